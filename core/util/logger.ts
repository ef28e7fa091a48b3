/** Where the framework talks to the person at the terminal (stderr, so --json stdout stays clean). */
export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
}

export const stderrLogger = (quiet = false): Logger => ({
  info: (m) => { if (!quiet) process.stderr.write(`${m}\n`); },
  warn: (m) => process.stderr.write(`warning: ${m}\n`),
});
