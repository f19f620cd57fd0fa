package main

import (
	"context"
	"fmt"
)

// benchCommand is one `tacklegate bench` load generator.
type benchCommand struct {
	name    string
	summary string
	run     func(ctx context.Context, e env, args []string) int
}

// benchCommands lists the load generators; each lives in bench_<name>.go.
func benchCommands() []benchCommand {
	return []benchCommand{
		{"messages", "customers write through the simulator while staff reply: lost, duplicated, latency", benchMessages},
		{"rooms", "N video rooms of 2 through the SFU: join time, CPU per forwarded packet, memory per participant, churn",
			func(ctx context.Context, e env, args []string) int { return benchRooms(ctx, args, e.stdout, e.stderr) }},
	}
}

func cmdBench(ctx context.Context, e env, args []string) int {
	usage := func() {
		fmt.Fprintln(e.stderr, "Usage: tacklegate bench KIND [options]   (tacklegate bench KIND --help for its options)\n\nKinds:")
		for _, b := range benchCommands() {
			fmt.Fprintf(e.stderr, "  %-10s %s\n", b.name, b.summary)
		}
	}
	if len(args) == 0 {
		usage()
		return exitUsage
	}
	for _, b := range benchCommands() {
		if b.name == args[0] {
			return b.run(ctx, e, args[1:])
		}
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		e.stderr = e.stdout
		usage()
		return exitOK
	}
	fmt.Fprintf(e.stderr, "tacklegate bench: unknown kind %q\n\n", args[0])
	usage()
	return exitUsage
}
