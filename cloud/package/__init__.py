"""The Package service: validates, records and follows the packages of deliveries."""
