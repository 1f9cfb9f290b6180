// Lists, after the run, every test that needed a retry (jest.retryTimes in
// test/e2e/retry.ts): a pass on the second attempt must not look like a clean pass.
export default class RetryReporter {
  /** @type {string[]} */
  retried = [];

  /**
   * @param {unknown} _test
   * @param {{ testFilePath: string, testResults: Array<{ fullName: string, status: string, invocations?: number, retryReasons?: string[] }> }} result
   */
  onTestResult(_test, result) {
    for (const t of result.testResults) {
      if ((t.invocations ?? 1) <= 1) continue;
      const why = (t.retryReasons?.[0] ?? '').split('\n').find((l) => l.trim()) ?? '';
      this.retried.push(`${t.status} after ${t.invocations} attempts: ${t.fullName}${why ? ` (first attempt: ${why.trim().slice(0, 300)})` : ''}`);
    }
  }

  onRunComplete() {
    if (this.retried.length === 0) return;
    const lines = this.retried.map((l) => `  - ${l}`).join('\n');
    process.stderr.write(`\n[e2e] RETRIED ${this.retried.length} test(s) (jest.retryTimes safety net; investigate, see test/e2e/README.md):\n${lines}\n`);
  }
}
