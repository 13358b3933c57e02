/*
 * The arithmetic ceiling of this CPU: float32 fused multiply-adds per second with independent
 * accumulators (no memory traffic), 256-bit (AVX2) and 512-bit (AVX-512) vectors, 1 and 2 threads.
 * The UNet benchmark's GFLOP/s are read against this number (bench/results/unet-cpu.md).
 * Not part of the build (the project needs no C compiler):
 *
 *   gcc -O3 -mavx512f -mfma -pthread bench/peak-fma.c -o /tmp/peak-fma && /tmp/peak-fma
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#define ROUNDS 200000000L
#define CHAINS 12 /* enough independent FMAs to cover latency x issue width */

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *fma512(void *out) {
  __m512 acc[CHAINS];
  for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps(i * 0.001f);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (long r = 0; r < ROUNDS; r++)
    for (int k = 0; k < CHAINS; k++) acc[k] = _mm512_fmadd_ps(acc[k], a, b);
  float s = 0;
  for (int i = 0; i < CHAINS; i++) s += _mm512_reduce_add_ps(acc[i]);
  *(float *)out = s; /* keeps the loop alive */
  return 0;
}

static void *fma256(void *out) {
  __m256 acc[CHAINS];
  for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_set1_ps(i * 0.001f);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long r = 0; r < ROUNDS; r++)
    for (int k = 0; k < CHAINS; k++) acc[k] = _mm256_fmadd_ps(acc[k], a, b);
  float lanes[8], s = 0;
  for (int i = 0; i < CHAINS; i++) {
    _mm256_storeu_ps(lanes, acc[i]);
    for (int j = 0; j < 8; j++) s += lanes[j];
  }
  *(float *)out = s;
  return 0;
}

int main(void) {
  for (int wide = 0; wide < 2; wide++) {
    for (int threads = 1; threads <= 2; threads++) {
      pthread_t t[2];
      float sink[2];
      double t0 = now();
      for (int i = 0; i < threads; i++) pthread_create(&t[i], 0, wide ? fma512 : fma256, &sink[i]);
      for (int i = 0; i < threads; i++) pthread_join(t[i], 0);
      double seconds = now() - t0;
      double flops = (double)threads * ROUNDS * CHAINS * (wide ? 16 : 8) * 2;
      printf("%s, %d thread(s): %.1f GFLOP/s (%.2f s, %g)\n", wide ? "AVX-512" : "AVX2", threads, flops / seconds / 1e9, seconds, sink[0]);
    }
  }
  return 0;
}
