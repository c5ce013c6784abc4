"""The web console: inbox, deal and account pages, overview, flows and dead letters."""
