// C reference for `npm run bench -- fingerprint`: per-tensor L2 norms of bf16 tensors in NumPy's
// pairwise order (spec/compat.md §4), AVX2 widening, pread into a 64-byte-aligned buffer.
//
// Build: gcc -O3 -mavx2 -ffp-contract=off -pthread -o fingerprint_ref fingerprint_ref.c -lm
// Usage: fingerprint_ref THREADS < plan   (plan lines: "path<TAB>file_offset<TAB>n_elements")
// Output: one line per tensor, in plan order: the norm as a C99 hex float; then "seconds S" on stderr
// (time of the read+norm work only, excluding plan parsing). Threads take tensors from a shared
// atomic counter (each with its own buffer): the simplest well-balanced parallel form in C.
#define _GNU_SOURCE
#include <fcntl.h>
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
  char path[1024];
  long long offset;
  long long n;
  double norm;
} item_t;

static item_t *items;
static long long n_items;
static atomic_llong next_item;
static size_t buf_bytes;

static double leaf(const uint16_t *a, long long n) {
  if (n < 8) {
    double s = 0.0;
    for (long long i = 0; i < n; i++) {
      uint32_t b = (uint32_t)a[i] << 16;
      float f;
      memcpy(&f, &b, 4);
      double d = f;
      s += d * d;
    }
    return s;
  }
  if (n <= 128) {
    __m256d r03 = _mm256_setzero_pd(), r47 = _mm256_setzero_pd();
    long long whole = n - (n % 8), i;
    for (i = 0; i < whole; i += 8) {
      __m128i v = _mm_loadu_si128((const __m128i *)(a + i));
      __m256 f = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16));
      __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(f));
      __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(f, 1));
      r03 = _mm256_add_pd(r03, _mm256_mul_pd(lo, lo));
      r47 = _mm256_add_pd(r47, _mm256_mul_pd(hi, hi));
    }
    double r[8];
    _mm256_storeu_pd(r, r03);
    _mm256_storeu_pd(r + 4, r47);
    double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) {
      uint32_t b = (uint32_t)a[i] << 16;
      float f;
      memcpy(&f, &b, 4);
      double d = f;
      s += d * d;
    }
    return s;
  }
  long long n2 = n / 2;
  n2 -= n2 % 8;
  return leaf(a, n2) + leaf(a + n2, n - n2);
}

static void *worker(void *arg) {
  (void)arg;
  uint16_t *buf;
  if (posix_memalign((void **)&buf, 4096, buf_bytes) != 0) abort();
  for (;;) {
    long long k = atomic_fetch_add(&next_item, 1);
    if (k >= n_items) break;
    item_t *it = &items[k];
    int fd = open(it->path, O_RDONLY);
    if (fd < 0) { perror(it->path); exit(1); }
    size_t want = (size_t)it->n * 2, got = 0;
    while (got < want) {
      ssize_t r = pread(fd, (char *)buf + got, want - got, it->offset + (off_t)got);
      if (r <= 0) { perror("pread"); exit(1); }
      got += (size_t)r;
    }
    close(fd);
    it->norm = sqrt(0.0 + leaf(buf, it->n));
  }
  free(buf);
  return NULL;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  long long cap = 1024;
  items = malloc(sizeof(item_t) * cap);
  char line[1200];
  while (fgets(line, sizeof line, stdin)) {
    if (n_items == cap) items = realloc(items, sizeof(item_t) * (cap *= 2));
    item_t *it = &items[n_items];
    if (sscanf(line, "%1023[^\t]\t%lld\t%lld", it->path, &it->offset, &it->n) != 3) continue;
    if ((size_t)it->n * 2 > buf_bytes) buf_bytes = (size_t)it->n * 2;
    n_items++;
  }
  buf_bytes = (buf_bytes + 4095) / 4096 * 4096 + 4096;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pthread_t tid[64];
  if (threads < 1) threads = 1;
  if (threads > 64) threads = 64;
  for (int t = 0; t < threads; t++) pthread_create(&tid[t], NULL, worker, NULL);
  for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  for (long long k = 0; k < n_items; k++) printf("%a\n", items[k].norm);
  fprintf(stderr, "seconds %.6f\n", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
  return 0;
}
