"""The web layer: public routes, the admin API, the dashboard, and what they share (problem
details, body limits, content negotiation, page templates)."""
