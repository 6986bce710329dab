// Package sshc is devbundle's SSH client for machines: it waits for a
// guest's sshd, pins the guest's host key per machine, replaces a box's
// insecure login key with a per-machine key, runs commands, uploads files,
// opens interactive shells and tunnels TCP connections.
//
// Everything here speaks to a real OpenSSH server through
// golang.org/x/crypto/ssh; nothing shells out to an ssh binary.
package sshc
