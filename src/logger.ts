/**
 * @module logger
 * Structured logs: one JSON object per line (for machines) or a short readable line (for terminals).
 * `child()` binds fields such as a job id so that every line of that job carries it.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

export interface LogSink {
  write(line: string): unknown;
}

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

function serializeValue(value: unknown): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: value.message };
  }
  return value;
}

export function createLogger(options: {
  sink: LogSink;
  format: 'json' | 'pretty';
  level?: LogLevel;
  bindings?: LogFields;
  now?: () => Date;
}): Logger {
  const { sink, format, level = 'info', bindings = {}, now = () => new Date() } = options;
  const write = (lineLevel: LogLevel, message: string, fields: LogFields = {}): void => {
    if (LEVELS[lineLevel] < LEVELS[level]) {
      return;
    }
    const merged: Record<string, unknown> = {};
    for (const [key, value] of Object.entries({ ...bindings, ...fields })) {
      merged[key] = serializeValue(value);
    }
    if (format === 'json') {
      sink.write(`${JSON.stringify({ time: now().toISOString(), level: lineLevel, msg: message, ...merged })}\n`);
    } else {
      const extra = Object.entries(merged)
        .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
        .join(' ');
      sink.write(`${now().toISOString().slice(11, 19)} ${lineLevel.toUpperCase().padEnd(5)} ${message}${extra ? ` ${extra}` : ''}\n`);
    }
  };
  return {
    debug: (message, fields) => write('debug', message, fields),
    info: (message, fields) => write('info', message, fields),
    warn: (message, fields) => write('warn', message, fields),
    error: (message, fields) => write('error', message, fields),
    child: (fields) => createLogger({ sink, format, level, bindings: { ...bindings, ...fields }, now }),
  };
}

/** A logger that drops everything; for tests that do not look at logs. */
export const silentLogger: Logger = createLogger({ sink: { write: () => undefined }, format: 'json', level: 'error' });
