// Package jsonrpc holds the JSON-RPC 2.0 wire format used on both sides of
// the gateway: parsing and validating client requests (single calls and
// batches), building responses and notifications, and the standard error
// codes. It keeps request ids as the raw bytes the client sent, so that every
// id comes back exactly as it was written.
package jsonrpc
