/**
 * The 32-bit Mersenne Twister (MT19937), as in ATen's at::mt19937 (MT19937RNGEngine.h), which
 * gives the same stream as std::mt19937. Torch seeds it with init_genrand on the low 32 bits of
 * the 64-bit seed: state[0] = seed & 0xffffffff.
 */
const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER = 0x80000000;
const LOWER = 0x7fffffff;

export class MT19937 {
  private readonly state = new Int32Array(N);
  private index = N; // N: regenerate the whole block before the first output

  constructor(seed32: number) {
    const s = this.state;
    s[0] = seed32 | 0;
    for (let i = 1; i < N; i++) {
      const prev = s[i - 1];
      // 1812433253 * (prev ^ (prev >>> 30)) + i, mod 2^32
      s[i] = (Math.imul(1812433253, prev ^ (prev >>> 30)) + i) | 0;
    }
  }

  /** Next 32-bit output as an unsigned number in [0, 2^32). */
  nextU32(): number {
    if (this.index >= N) this.twist();
    let y = this.state[this.index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  private twist(): void {
    const s = this.state;
    for (let i = 0; i < N; i++) {
      const y = (s[i] & UPPER) | (s[(i + 1) % N] & LOWER);
      s[i] = s[(i + M) % N] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    this.index = 0;
  }
}
