package io.palisade.cli;

import io.palisade.spi.PalisadeException;
import picocli.CommandLine;

/** Shared CLI plumbing: one readable line and the mapped exit code for every error. */
public final class Cli {
    private Cli() {}

    public static CommandLine configure(CommandLine commandLine) {
        commandLine.setExecutionExceptionHandler((e, cmd, parseResult) -> {
            if (e instanceof PalisadeException pe) {
                cmd.getErr().println("palisade: " + pe.getMessage());
                return pe.errorCode().exitCode();
            }
            cmd.getErr().println("palisade: " + (e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage()));
            return 1;
        });
        commandLine.setParameterExceptionHandler((e, args) -> {
            e.getCommandLine().getErr().println("palisade: " + e.getMessage() + " (see --help)");
            return 2;
        });
        return commandLine;
    }
}
