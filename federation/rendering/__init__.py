"""An event rendered for followers: post templates, sanitized HTML, length, hashtags, account
feeds and Mastodon statuses."""
