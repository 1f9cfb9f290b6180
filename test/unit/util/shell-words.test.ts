import { describe, expect, it } from '@jest/globals';
import { ShellWordsError, splitShellWords } from '../../../operator/util/shell-words.js';

describe('splitShellWords', () => {
  it('splits on whitespace', () => {
    expect(splitShellWords('  sleep\t0.1  ')).toEqual(['sleep', '0.1']);
    expect(splitShellWords('')).toEqual([]);
  });

  it('handles single quotes, double quotes and backslashes like sh', () => {
    expect(splitShellWords(`echo 'a b' "c d" e\\ f`)).toEqual(['echo', 'a b', 'c d', 'e f']);
    expect(splitShellWords(`"say \\"hi\\"" 'it''s'`)).toEqual(['say "hi"', 'its']);
    expect(splitShellWords(`"a\\nb"`)).toEqual(['a\\nb']);
    expect(splitShellWords(`''`)).toEqual(['']);
    expect(splitShellWords(`a""b`)).toEqual(['ab']);
  });

  it('never expands or evaluates anything', () => {
    expect(splitShellWords('echo $HOME $(rm -rf /) `id` ~ *.ts a;b|c')).toEqual(['echo', '$HOME', '$(rm', '-rf', '/)', '`id`', '~', '*.ts', 'a;b|c']);
    expect(splitShellWords(`sh -c 'echo $1' "$(x)"`)).toEqual(['sh', '-c', 'echo $1', '$(x)']);
  });

  it('rejects unbalanced quotes and a trailing backslash with a clear error', () => {
    expect(() => splitShellWords(`echo 'abc`)).toThrow(ShellWordsError);
    expect(() => splitShellWords(`echo 'abc`)).toThrow(/unbalanced single quote at position 5/);
    expect(() => splitShellWords(`echo "abc`)).toThrow(/unbalanced double quote/);
    expect(() => splitShellWords(`echo abc\\`)).toThrow(/trailing backslash/);
  });
});
