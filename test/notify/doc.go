// Package notify tests camd's webhooks and MQTT end to end: the built camd
// binary supervising a simulated camera ("camd sim") whose outages become
// events, a real HTTP receiver that verifies signatures and goes down for
// a while, and mosquitto as the broker with a subscriber watching it.
// camd is killed with -9 while deliveries are pending and restarted.
package notify
