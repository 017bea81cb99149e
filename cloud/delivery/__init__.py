"""The Delivery service: each delivery's stage, as its client sees it."""
