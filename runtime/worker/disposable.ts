/** `@azure/functions-core`.Disposable (types-core/index.d.ts): calls a function once on dispose. */
export class Disposable {
  #callOnDispose: (() => unknown) | undefined

  static from(...likes: { dispose: () => unknown }[]): Disposable {
    return new Disposable(() => {
      for (const like of likes) like.dispose()
    })
  }

  constructor(callOnDispose: () => unknown) {
    this.#callOnDispose = callOnDispose
  }

  dispose(): void {
    const f = this.#callOnDispose
    this.#callOnDispose = undefined
    f?.()
  }
}
