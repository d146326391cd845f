import { FormatError } from './errors.ts'

/**
 * How far an image's layers may expand when they are read: the uncompressed (tar) bytes of one
 * layer and of all the layers of an image, and the tar entries of all its layers (one layer's
 * entries are TarSafety's `maxEntries`). Compressed sizes say nothing of these: 330 KB of zstd
 * hold 10 GiB of zeros. Each is unlimited when not given.
 */
export interface ExpansionLimits {
  maxLayerBytes: number
  maxImageBytes: number
  maxImageEntries: number
}

/**
 * One image's expansion, counted layer by layer against ExpansionLimits. Each pass over a layer
 * gets a meter (a conversion with a profile reads a layer twice: both passes are checked, the
 * committed one is counted for the image); a meter throws as soon as a limit is passed, so what
 * is left of the layer is never decompressed.
 */
export class ExpansionBudget {
  readonly limits: ExpansionLimits
  #bytes = 0
  #entries = 0

  constructor(limits: Partial<ExpansionLimits> = {}) {
    this.limits = {
      maxLayerBytes: limits.maxLayerBytes ?? Infinity,
      maxImageBytes: limits.maxImageBytes ?? Infinity,
      maxImageEntries: limits.maxImageEntries ?? Infinity,
    }
  }

  /** A meter for one pass over the next layer, on top of the layers committed so far. */
  meter(): ExpansionMeter {
    return new ExpansionMeter(this.limits, this.#bytes, this.#entries)
  }

  /** Adds a layer (its last pass) to the image's totals. */
  commit(meter: ExpansionMeter): void {
    this.#bytes += meter.bytes
    this.#entries += meter.entries
  }
}

export class ExpansionMeter {
  readonly #limits: ExpansionLimits
  readonly #imageBytes: number
  readonly #imageEntries: number
  #bytes = 0
  #entries = 0

  constructor(limits: ExpansionLimits, imageBytes: number, imageEntries: number) {
    this.#limits = limits
    this.#imageBytes = imageBytes
    this.#imageEntries = imageEntries
  }

  get bytes(): number {
    return this.#bytes
  }

  get entries(): number {
    return this.#entries
  }

  addBytes(n: number): void {
    this.#bytes += n
    const { maxLayerBytes, maxImageBytes } = this.#limits
    if (this.#bytes > maxLayerBytes) {
      throw new FormatError(
        'LAYER_UNCOMPRESSED_TOO_LARGE',
        `decompresses to more than ${maxLayerBytes} bytes, the limit for one layer`,
      )
    }
    if (this.#imageBytes + this.#bytes > maxImageBytes) {
      throw new FormatError(
        'IMAGE_UNCOMPRESSED_TOO_LARGE',
        `the layers decompress to more than ${maxImageBytes} bytes, the limit for an image`,
      )
    }
  }

  addEntry(): void {
    this.#entries++
    const { maxImageEntries } = this.#limits
    if (this.#imageEntries + this.#entries > maxImageEntries) {
      throw new FormatError(
        'IMAGE_TOO_MANY_ENTRIES',
        `the layers have more than ${maxImageEntries} entries, the limit for an image`,
      )
    }
  }
}
