// Package media hosts the WebRTC rooms used for video help: a pion SFU with
// signaling, TURN and recording. It knows nothing about rental; the gateway
// gives it rooms, participants and tokens.
package media
