// Package commands adds `ipfs stats highload` (and, as components land, its
// subcommands) to Kubo's command tree. It registers in init(), because the
// CLI parser is built before plugins are initialised; the commands then work
// through the HTTP API of a running daemon and on an offline node alike.
//
// Each command emits one Go struct: the text encoder prints it for people,
// and `--enc=json` prints the struct itself.
//
//	ipfs stats highload
//	ipfs stats highload --enc=json
package commands
