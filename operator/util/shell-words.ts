// Splits an `--agent-command` string into argv the way a POSIX shell tokenizes
// words (quotes and backslashes), but WITHOUT any expansion: `$VAR`, `$(...)`,
// backticks, globs, `~`, `;`, `|` are plain characters. The result is executed
// as an argv, never through a shell.

export class ShellWordsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShellWordsError';
  }
}

export function splitShellWords(input: string): string[] {
  const words: string[] = [];
  let current = '';
  let inWord = false;
  let i = 0;
  const n = input.length;
  while (i < n) {
    const ch = input[i] as string;
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') {
      if (inWord) {
        words.push(current);
        current = '';
        inWord = false;
      }
      i += 1;
      continue;
    }
    inWord = true;
    if (ch === "'") {
      // Single quotes: everything literal up to the next single quote.
      const end = input.indexOf("'", i + 1);
      if (end === -1) throw new ShellWordsError(`unbalanced single quote at position ${i} in ${JSON.stringify(input)}`);
      current += input.slice(i + 1, end);
      i = end + 1;
    } else if (ch === '"') {
      // Double quotes: backslash escapes only \ " $ ` and newline (as in sh).
      let j = i + 1;
      let closed = false;
      while (j < n) {
        const c = input[j] as string;
        if (c === '"') {
          closed = true;
          break;
        }
        if (c === '\\' && j + 1 < n) {
          const next = input[j + 1] as string;
          if (next === '\n') {
            j += 2;
            continue;
          }
          if (next === '\\' || next === '"' || next === '$' || next === '`') {
            current += next;
            j += 2;
            continue;
          }
        }
        current += c;
        j += 1;
      }
      if (!closed) throw new ShellWordsError(`unbalanced double quote at position ${i} in ${JSON.stringify(input)}`);
      i = j + 1;
    } else if (ch === '\\') {
      if (i + 1 >= n) throw new ShellWordsError(`trailing backslash in ${JSON.stringify(input)}`);
      const next = input[i + 1] as string;
      // Backslash-newline is a line continuation, as in sh.
      if (next !== '\n') current += next;
      else if (current === '') inWord = false;
      i += 2;
    } else {
      current += ch;
      i += 1;
    }
  }
  if (inWord) words.push(current);
  return words;
}
