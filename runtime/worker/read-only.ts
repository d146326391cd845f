/**
 * Hook contexts expose hookData, appHookData and invocationContext as read-only properties:
 * mutating the object is fine, assigning the property throws (the worker's ReadOnlyError).
 */
export class ReadOnlyError extends TypeError {
  constructor(property: string) {
    super(`Cannot assign to read only property '${property}'`)
    this.name = 'ReadOnlyError'
  }
}

export function defineReadOnly<T extends object>(target: T, values: Record<string, unknown>): T {
  for (const [key, value] of Object.entries(values)) {
    Object.defineProperty(target, key, {
      enumerable: true,
      get: () => value,
      set: () => {
        throw new ReadOnlyError(key)
      },
    })
  }
  return target
}
