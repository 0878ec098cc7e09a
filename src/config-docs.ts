/**
 * @module config-docs
 * Renders the configuration table of config.ts for people: the README's configuration section (kept in sync by
 * `npm run docs:config` and checked by a test) and the settings part of `cesar serve --help`.
 */
import { SETTINGS } from './config.ts';
import type { Setting } from './config.ts';

const ROWS: readonly Setting<unknown>[] = Object.values(SETTINGS);

/** The README marks the generated table with these two comments. */
export const README_TABLE_START = '<!-- configuration table: generated from src/config.ts by `npm run docs:config` -->';
export const README_TABLE_END = '<!-- end of configuration table -->';

const cell = (text: string): string => text.replaceAll('|', '\\|');

export function configMarkdownTable(): string {
  const lines = ['| variable | default | accepts | meaning |', '|---|---|---|---|'];
  for (const row of ROWS) {
    lines.push(`| \`${row.variable}\` | ${cell(row.shownDefault)} | ${cell(row.accepts)} | ${cell(row.meaning)} |`);
  }
  return `${lines.join('\n')}\n`;
}

/** `readme` with the text between the markers replaced by the current table; throws when a marker is missing. */
export function withConfigTable(readme: string): string {
  const start = readme.indexOf(README_TABLE_START);
  const end = readme.indexOf(README_TABLE_END);
  if (start < 0 || end < start) {
    throw new Error(`README.md lacks the markers ${README_TABLE_START} ... ${README_TABLE_END}`);
  }
  return `${readme.slice(0, start + README_TABLE_START.length)}\n${configMarkdownTable()}${readme.slice(end)}`;
}

function wrap(text: string, width: number, indent: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && indent.length + line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  lines.push(line);
  return lines.map((each) => `${indent}${each}`).join('\n');
}

const plain = (markdown: string): string => markdown.replaceAll('`', '');

/** Every variable with its default, accepted values and meaning, for a command's --help. */
export function configHelp(width = 100): string {
  return ROWS.map((row) => {
    return `  ${row.variable} (default ${plain(row.shownDefault)}; ${plain(row.accepts)})\n${wrap(plain(row.meaning), width, '      ')}\n`;
  }).join('');
}

/** The `cesar serve` options that set a variable, each with the variable it sets and its default, then `extra` options. */
export function configFlagsHelp(extra: readonly (readonly [string, string])[]): string {
  const rows = ROWS.flatMap((row) =>
    row.flag
      ? [[`--${row.flag.name}${row.flag.value ? ` ${row.flag.value}` : ''}`, `sets ${row.variable}${row.flag.value ? '' : '=true'} (default ${plain(row.shownDefault)})`] as const]
      : [],
  );
  const all = [...rows, ...extra];
  const width = Math.max(...all.map(([left]) => left.length)) + 2;
  return all.map(([left, right]) => `  ${left.padEnd(width)}${right}\n`).join('');
}
