package main

import (
	"context"
	"fmt"
)

// cmdBench runs the load generators. A minimal dispatcher from the calls
// branch (only `rooms`); the messaging branch has its own with `messages`,
// to be merged into one.
func cmdBench(ctx context.Context, e env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(e.stderr, "Usage: tacklegate bench rooms [options]   (bench rooms --help)")
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	switch args[0] {
	case "rooms":
		return benchRooms(ctx, args[1:], e.stdout, e.stderr)
	}
	fmt.Fprintf(e.stderr, "tacklegate bench: unknown benchmark %q (have: rooms)\n", args[0])
	return exitUsage
}
