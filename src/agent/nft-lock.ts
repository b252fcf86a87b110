// One writer of nodewall's table at a time. A reconcile pass applying a new
// ruleset and the drift repair restoring the last one both take this lock
// around "write, then read back the table hash", so a transaction in flight is
// never mistaken for drift, and a restore never lands between an apply and its
// bookkeeping.

export class NftWriteLock {
  #tail: Promise<unknown> = Promise.resolve();
  #held = false;

  /** Run `fn` once every earlier holder is done; its result (or rejection) is returned. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#tail.then(async () => {
      this.#held = true;
      try {
        return await fn();
      } finally {
        this.#held = false;
      }
    });
    // The chain goes on whatever `fn` did.
    this.#tail = next.catch(() => undefined);
    return next;
  }

  /** True while some holder runs (for tests and logs). */
  get held(): boolean {
    return this.#held;
  }
}
