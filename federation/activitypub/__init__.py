"""ActivityPub and ActivityStreams documents: actors, collections, activities, WebFinger, NodeInfo
and the URLs everything lives at."""
