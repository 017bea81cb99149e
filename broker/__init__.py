"""The broker servers: the embedded amqtt broker, a Mosquitto launcher, credentials and ACLs."""
