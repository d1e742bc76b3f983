"""The public release hall (发布厅): pages, feeds, search and partner webhooks."""
