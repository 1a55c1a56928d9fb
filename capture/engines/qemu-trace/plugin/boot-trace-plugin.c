/*
 * boot-trace's QEMU TCG plugin (QEMU plugin API version 1, QEMU 7.2): records a whole boot into a
 * recording file whose format docs/whole-boot.md describes byte by byte and
 * src/trace/recording/format.ts owns. boot-trace builds this file with the machine's cc at first use
 * (capture/engines/qemu-trace/plugin-build.ts) and loads it with
 *   -plugin boot-trace-plugin.so,out=REC,splits=SPLITS,gran=function,from=1000000,alias=P:E:V,...
 *
 * Arguments (key=value; hex numbers without 0x):
 *   out=PATH        the recording; boot-trace has already written its file header and header frames,
 *                   the plugin appends record frames ('R') and its end frame ('E')
 *   splits=PATH     function boundaries: u64 count, count x u64 address (sorted), count x u8 kind
 *                   (0 function start, 1 thunk folded into its caller, 2 no function: bare addresses)
 *   gran=function|block|instruction
 *   from=HEX        start recording when a block (instruction) at this address executes; 0: at once
 *   alias=PS:PE:VS  while the kernel runs at its physical addresses [PS, PE) after `from`, name them
 *                   VS + (a - PS) (Linux's startup_64 runs at 0x1000000 before it jumps to its link address)
 *   until=HEX       stop recording when this address executes (0: never)
 *   max=N           stop recording after N guest instructions (0: never)
 *   compress=zlib|zstd|none   how record frames are compressed (default zlib, level 1): through
 *                   libz.so.1 or libzstd.so.1, opened with dlopen (QEMU itself links both); a missing
 *                   library leaves the frames raw. zlib because Node inflates it natively (~0.7 GB/s),
 *                   where zstd frames are decoded in JavaScript (fzstd, ~50 MB/s on Node 20)
 *   level=N         compression level (default 1)
 *   bufkb=N         size of each of the rotating buffers (default 4096)
 *
 * Threads: QEMU runs the callbacks below in the vCPU thread (boot-trace runs -smp 1). They only
 * encode into the current buffer; a full buffer is handed to a writer thread, which compresses and
 * write()s it, so no system call stalls the emulated CPU. When every buffer is waiting to be written
 * the vCPU thread waits, and that wait is subtracted from every later host timestamp.
 *
 * No QEMU header is included: Debian ships none. The few declarations below follow the documented
 * API of include/qemu/qemu-plugin.h at QEMU v7.2.0 (API 1), and for -DBT_API=4 the register and guest
 * memory calls of the same header in QEMU 10 (their signatures of API 1's calls are unchanged there).
 *   sysentry=HEX    (API 4) entry_SYSCALL_64: read rax, CR3 and, for execve, the file name at rdi
 *   kexec=HEX       (API 4) kernel_execve: read CR3 and the file name at rdi
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- QEMU plugin API v1 (include/qemu/qemu-plugin.h, QEMU v7.2.0) ---- */
typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
void qemu_plugin_outs(const char *string);

/*
 * BT_API: the plugin API this build is for. 1 (default): QEMU 7.2. 4: QEMU 10 (Debian bookworm-backports),
 * which also reads registers and guest memory at each system call entry (syscall number, CR3, execve's
 * file name: the 'Y' frame). QEMU 10 accepts API 2-4 only, QEMU 7.2 only 0-1, so each QEMU gets its build.
 */
#ifndef BT_API
#define BT_API 1
#endif
__attribute__((visibility("default"))) int qemu_plugin_version = BT_API;

#if BT_API >= 4
/* include/qemu/qemu-plugin.h (QEMU 10), and the two glib types its register and memory calls take. */
typedef struct { char *data; unsigned int len; } GArray;
typedef struct { uint8_t *data; unsigned int len; } GByteArray;
GByteArray *g_byte_array_new(void);
GByteArray *g_byte_array_set_size(GByteArray *array, unsigned int length);
char *g_array_free(GArray *array, int free_segment);
struct qemu_plugin_register;
typedef struct { struct qemu_plugin_register *handle; const char *name; const char *feature; } qemu_plugin_reg_descriptor;
typedef void (*qemu_plugin_vcpu_simple_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index);
void qemu_plugin_register_vcpu_init_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_simple_cb_t cb);
GArray *qemu_plugin_get_registers(void);
int qemu_plugin_read_register(struct qemu_plugin_register *handle, GByteArray *buf);
bool qemu_plugin_read_memory_vaddr(uint64_t addr, GByteArray *data, size_t len);
#endif

/* ---- recording format constants (src/trace/recording/format.ts is the owner) ---- */
#define FRAME_HEADER 24
enum { ENC_RAW = 0, ENC_ZSTD = 1, ENC_DEFLATE = 2, ENC_ZLIB = 3 };
enum { GRAN_FUNCTION = 0, GRAN_BLOCK = 1, GRAN_INSTRUCTION = 2 };
enum { KIND_FUNCTION = 0, KIND_FOLD = 1, KIND_BARE = 2 };
/* Function keys: a function's start address, or these (never a kernel function start). */
#define KEY_USER 1u
#define KEY_FOLD 2u
#define USER_LIMIT 0x800000000000ull
/* The longest record: three 10-byte varints, or a translation entry's header + 255 sizes. */
#define MAX_ENTRY (3 * 10 + 4096)
#define NBUF 8

/* Everything known about a block at translation time; its address for the exec callback. */
struct tb_info {
  uint64_t vaddr;   /* as recorded (the physical alias mapped to its link address) */
  uint64_t raw;     /* as executed */
  uint64_t key;     /* function key */
  uint32_t id;      /* translation id (block granularity) */
  uint32_t n;       /* instructions */
};

struct insn_info {
  uint64_t vaddr;
  uint64_t raw;
};

struct buffer {
  uint8_t *data;
  size_t len;
  uint32_t count;
  uint8_t type;
};

static struct {
  int fd;
  int gran;
  uint64_t from, until, max_insns;
  uint64_t alias_ps, alias_pe, alias_vs;
  bool alias_on;
  uint64_t *splits;
  uint8_t *kinds;
  size_t nsplits;
  size_t bufsize;
  int compress;   /* ENC_RAW, ENC_ZSTD or ENC_ZLIB */
  int level;

  /* vCPU-thread state */
  bool recording, done, started;
  uint64_t t0;            /* CLOCK_MONOTONIC ns at install */
  uint64_t excluded;      /* ns the vCPU thread waited for the writer */
  uint64_t ic;            /* guest instructions since recording started */
  uint64_t cur_key;
  uint64_t last_t, last_ic;
  int64_t last_addr;
  uint64_t records, total_records;
  uint32_t next_tb_id;
  uint64_t translations;
  struct buffer *cur;
  uint8_t *p, *limit;
  const char *reason;
  bool end_written;

  /* writer thread */
  pthread_t writer;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct buffer bufs[NBUF];
  struct buffer *freeq[NBUF];
  int nfree;
  struct buffer *fullq[NBUF + 1];
  int fhead, ftail, nfull;
  bool quit;
  uint64_t frames, bytes_written, write_ns, write_errors;
  char write_error[160];

  /* API 4: system call entries, kept in memory and written as one 'Y' frame at the end */
  uint64_t sys_entry, kexec_entry;
  uint8_t *ybuf;
  size_t ylen, ycap;
  uint64_t ycount, y_last_t, y_last_ic;
#if BT_API >= 4
  struct qemu_plugin_register *r_rax, *r_rdi, *r_cr3;
  GByteArray *rbuf, *mbuf;
#endif

  /* libzstd or zlib, when present */
  size_t (*zstd_bound)(size_t);
  size_t (*zstd_compress)(void *, size_t, const void *, size_t, int);
  unsigned (*zstd_is_error)(size_t);
  unsigned long (*zlib_bound)(unsigned long);
  int (*zlib_compress2)(uint8_t *, unsigned long *, const uint8_t *, unsigned long, int);
  uint8_t *zbuf;
  size_t zcap;
} S;

static uint32_t crc_table[256];

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    crc_table[i] = c;
  }
}

static uint32_t crc32_of(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffffu;
  while (n--) c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint8_t *put_uv(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

static inline uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }

static void put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

static void write_all(const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(S.fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (S.write_errors++ == 0) snprintf(S.write_error, sizeof S.write_error, "write: %s", strerror(errno));
      return;
    }
    p += w;
    n -= (size_t)w;
    S.bytes_written += (uint64_t)w;
  }
}

/* One frame, header and payload in a single write() where possible (writer thread only). */
static void write_frame(uint8_t type, uint32_t count, const uint8_t *raw, size_t raw_len) {
  const uint8_t *stored = raw;
  size_t stored_len = raw_len;
  uint8_t enc = ENC_RAW;
  if (S.compress != ENC_RAW && type == 'R') {
    size_t need = (S.compress == ENC_ZSTD ? S.zstd_bound(raw_len) : (size_t)S.zlib_bound(raw_len)) + FRAME_HEADER;
    if (need > S.zcap) {
      free(S.zbuf);
      S.zbuf = malloc(need);
      S.zcap = S.zbuf ? need : 0;
    }
    if (S.zbuf) {
      size_t z = 0;
      bool ok = false;
      if (S.compress == ENC_ZSTD) {
        z = S.zstd_compress(S.zbuf + FRAME_HEADER, S.zcap - FRAME_HEADER, raw, raw_len, S.level);
        ok = !S.zstd_is_error(z);
      } else {
        unsigned long zl = (unsigned long)(S.zcap - FRAME_HEADER);
        ok = S.zlib_compress2(S.zbuf + FRAME_HEADER, &zl, raw, (unsigned long)raw_len, S.level) == 0;
        z = (size_t)zl;
      }
      if (ok && z < raw_len) {
        stored = S.zbuf + FRAME_HEADER;
        stored_len = z;
        enc = (uint8_t)S.compress;
      }
    }
  }
  uint8_t h[FRAME_HEADER];
  memset(h, 0, sizeof h);
  h[0] = type;
  h[1] = enc;
  put_u32(h + 4, (uint32_t)stored_len);
  put_u32(h + 8, (uint32_t)raw_len);
  put_u32(h + 12, count);
  put_u32(h + 16, crc32_of(stored, stored_len));
  if (enc != ENC_RAW) {
    /* the compressed bytes sit right after room for the header: one write */
    memcpy(S.zbuf, h, FRAME_HEADER);
    write_all(S.zbuf, FRAME_HEADER + stored_len);
  } else {
    write_all(h, FRAME_HEADER);
    write_all(stored, stored_len);
  }
  S.frames++;
}

static void *writer_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&S.lock);
  for (;;) {
    while (S.nfull == 0 && !S.quit) pthread_cond_wait(&S.cond, &S.lock);
    if (S.nfull == 0 && S.quit) break;
    struct buffer *b = S.fullq[S.fhead];
    S.fhead = (S.fhead + 1) % (NBUF + 1);
    S.nfull--;
    pthread_mutex_unlock(&S.lock);
    uint64_t t = now_ns();
    write_frame(b->type, b->count, b->data, b->len);
    S.write_ns += now_ns() - t;
    pthread_mutex_lock(&S.lock);
    b->len = 0;
    b->count = 0;
    S.freeq[S.nfree++] = b;
    pthread_cond_broadcast(&S.cond);
  }
  pthread_mutex_unlock(&S.lock);
  return NULL;
}

/* Hands the current buffer to the writer and takes a free one, waiting (and timing the wait) if none is. */
static void rotate(void) {
  struct buffer *b = S.cur;
  b->len = (size_t)(S.p - b->data);
  b->count = (uint32_t)S.records;
  pthread_mutex_lock(&S.lock);
  if (b->len > 0) {
    S.fullq[S.ftail] = b;
    S.ftail = (S.ftail + 1) % (NBUF + 1);
    S.nfull++;
    pthread_cond_broadcast(&S.cond);
  } else {
    S.freeq[S.nfree++] = b;
  }
  if (S.nfree == 0) {
    uint64_t w = now_ns();
    while (S.nfree == 0) pthread_cond_wait(&S.cond, &S.lock);
    S.excluded += now_ns() - w;
  }
  S.cur = S.freeq[--S.nfree];
  pthread_mutex_unlock(&S.lock);
  S.cur->type = 'R';
  S.p = S.cur->data;
  S.limit = S.cur->data + S.bufsize - MAX_ENTRY;
  S.records = 0;
  /* Each frame decodes on its own: deltas start again from zero. */
  S.last_t = 0;
  S.last_ic = 0;
  S.last_addr = 0;
}

static inline uint64_t host_t(void) {
  uint64_t t = now_ns() - S.t0 - S.excluded;
  return t < S.last_t ? S.last_t : t;
}

/* function / instruction granularity: dt, d(instructions), zigzag d(address). */
static inline void emit(uint64_t vaddr) {
  if (S.p >= S.limit) rotate();
  uint64_t t = host_t();
  uint8_t *p = S.p;
  p = put_uv(p, t - S.last_t);
  p = put_uv(p, S.ic - S.last_ic);
  p = put_uv(p, zigzag((int64_t)vaddr - S.last_addr));
  S.p = p;
  S.last_t = t;
  S.last_ic = S.ic;
  S.last_addr = (int64_t)vaddr;
  S.records++;
  S.total_records++;
}

static size_t end_json(char *json, size_t cap, uint64_t t_end);

/* Queues the end frame behind the last record frame (the writer thread writes it). */
static void queue_end_frame(void) {
  uint64_t t_end = S.started ? host_t() : 0;
  rotate();
  pthread_mutex_lock(&S.lock);
  while (S.nfree == 0) pthread_cond_wait(&S.cond, &S.lock);
  struct buffer *b = S.freeq[--S.nfree];
  pthread_mutex_unlock(&S.lock);
  b->type = 'E';
  b->count = 0;
  b->len = end_json((char *)b->data, S.bufsize, t_end);
  pthread_mutex_lock(&S.lock);
  S.fullq[S.ftail] = b;
  S.ftail = (S.ftail + 1) % (NBUF + 1);
  S.nfull++;
  pthread_cond_broadcast(&S.cond);
  pthread_mutex_unlock(&S.lock);
  S.end_written = true;
}

/* The recording stops (until=, max=) but QEMU goes on: boot-trace sees the end frame and stops QEMU. */
static void end_recording(const char *reason) {
  if (S.done) return;
  S.done = true;
  S.recording = false;
  S.reason = reason;
  queue_end_frame();
}

static void start_recording(void) {
  S.recording = true;
  S.started = true;
  S.ic = 0;
  S.cur_key = 0;
}

/* Returns false when the recording is (now) off. Checks start, until and max at a block or instruction. */
static inline bool gate(uint64_t raw, uint64_t vaddr) {
  if (!S.recording) {
    if (S.done || raw != S.from) return false;
    start_recording();
  }
  if (S.until && (raw == S.until || vaddr == S.until)) {
    end_recording("until");
    return false;
  }
  if (S.max_insns && S.ic >= S.max_insns) {
    end_recording("max-steps");
    return false;
  }
  return true;
}

static void exec_function(unsigned int vcpu, void *ud) {
  (void)vcpu;
  struct tb_info *ti = ud;
  if (!gate(ti->raw, ti->vaddr)) return;
  if (ti->key != KEY_FOLD && ti->key != S.cur_key) {
    S.cur_key = ti->key;
    emit(ti->vaddr);
  }
  S.ic += ti->n;
}

static void exec_block(unsigned int vcpu, void *ud) {
  (void)vcpu;
  struct tb_info *ti = ud;
  if (!gate(ti->raw, ti->vaddr)) return;
  if (S.p >= S.limit) rotate();
  uint64_t t = host_t();
  uint8_t *p = S.p;
  p = put_uv(p, (uint64_t)ti->id << 1);
  p = put_uv(p, t - S.last_t);
  S.p = p;
  S.last_t = t;
  S.records++;
  S.total_records++;
  S.ic += ti->n;
}

static void exec_insn(unsigned int vcpu, void *ud) {
  (void)vcpu;
  struct insn_info *ii = ud;
  if (!gate(ii->raw, ii->vaddr)) return;
  emit(ii->vaddr);
  S.ic++;
}

static uint64_t map_alias(uint64_t a) {
  if (S.alias_on && a >= S.alias_ps && a < S.alias_pe) return S.alias_vs + (a - S.alias_ps);
  return a;
}

static uint64_t key_of(uint64_t a) {
  if (a < USER_LIMIT) return KEY_USER;
  size_t lo = 0, hi = S.nsplits;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (S.splits[mid] <= a) lo = mid + 1;
    else hi = mid;
  }
  if (lo == 0) return a;
  size_t i = lo - 1;
  switch (S.kinds[i]) {
    case KIND_FUNCTION: return S.splits[i];
    case KIND_FOLD: return KEY_FOLD;
    default: return a;
  }
}

#if BT_API >= 4
static uint64_t read_reg(struct qemu_plugin_register *r) {
  if (!r) return 0;
  g_byte_array_set_size(S.rbuf, 0);
  int n = qemu_plugin_read_register(r, S.rbuf);
  uint64_t v = 0;
  for (int i = 0; i < n && i < 8; i++) v |= (uint64_t)S.rbuf->data[i] << (8 * i); /* target (little-endian) order */
  return v;
}

static void on_vcpu_init(qemu_plugin_id_t id, unsigned int vcpu) {
  (void)id;
  (void)vcpu;
  GArray *regs = qemu_plugin_get_registers();
  if (!regs) return;
  qemu_plugin_reg_descriptor *d = (qemu_plugin_reg_descriptor *)regs->data;
  for (unsigned int i = 0; i < regs->len; i++) {
    if (!strcmp(d[i].name, "rax")) S.r_rax = d[i].handle;
    else if (!strcmp(d[i].name, "rdi")) S.r_rdi = d[i].handle;
    else if (!strcmp(d[i].name, "cr3")) S.r_cr3 = d[i].handle;
  }
  g_array_free(regs, 1);
}

/*
 * A 'Y' entry: kind (0 system call, 1 kernel_execve), dt_ns, d_instructions, number (rax; 0 for
 * kernel_execve), CR3, then for execve / execveat / kernel_execve the file name's length and bytes.
 */
static void syscall_entry(int kind) {
  if (!S.recording) return;
  uint64_t t = host_t();
  uint64_t nr = kind == 0 ? read_reg(S.r_rax) : 0;
  uint64_t cr3 = read_reg(S.r_cr3);
  const uint8_t *name = NULL;
  size_t nlen = 0;
  /* execve (59) and execveat (322: its file name is in rsi, not read here) */
  if ((kind == 0 && nr == 59) || kind == 1) {
    uint64_t p = read_reg(S.r_rdi);
    g_byte_array_set_size(S.mbuf, 0);
    if (p && qemu_plugin_read_memory_vaddr(p, S.mbuf, 256)) {
      name = S.mbuf->data;
      while (nlen < S.mbuf->len && name[nlen]) nlen++;
    }
  }
  if (S.ylen + 64 + nlen > S.ycap) {
    size_t cap = S.ycap ? S.ycap * 2 : 1 << 16;
    uint8_t *nb = realloc(S.ybuf, cap);
    if (!nb) return;
    S.ybuf = nb;
    S.ycap = cap;
  }
  uint8_t *q = S.ybuf + S.ylen;
  *q++ = (uint8_t)kind;
  q = put_uv(q, t - S.y_last_t);
  q = put_uv(q, S.ic - S.y_last_ic);
  q = put_uv(q, nr);
  q = put_uv(q, cr3);
  q = put_uv(q, nlen);
  if (nlen) memcpy(q, name, nlen), q += nlen;
  S.ylen = (size_t)(q - S.ybuf);
  S.y_last_t = t;
  S.y_last_ic = S.ic;
  S.ycount++;
}

static void exec_sys_entry(unsigned int vcpu, void *ud) {
  (void)vcpu;
  (void)ud;
  syscall_entry(0);
}

static void exec_kexec_entry(unsigned int vcpu, void *ud) {
  (void)vcpu;
  (void)ud;
  syscall_entry(1);
}
#endif

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  (void)id;
  size_t n = qemu_plugin_tb_n_insns(tb);
  uint64_t raw = qemu_plugin_tb_vaddr(tb);
  /* The alias applies from kernel entry until the kernel first runs at its link address. */
  if (S.alias_on && S.started && raw >= USER_LIMIT) S.alias_on = false;
  uint64_t vaddr = map_alias(raw);
  S.translations++;
#if BT_API >= 4
  /* Registered before the recording callbacks, so the entry is seen with the instruction count before the block. */
  if (S.sys_entry && raw == S.sys_entry) qemu_plugin_register_vcpu_tb_exec_cb(tb, exec_sys_entry, QEMU_PLUGIN_CB_R_REGS, NULL);
  if (S.kexec_entry && raw == S.kexec_entry) qemu_plugin_register_vcpu_tb_exec_cb(tb, exec_kexec_entry, QEMU_PLUGIN_CB_R_REGS, NULL);
#endif
  if (S.gran == GRAN_INSTRUCTION) {
    for (size_t i = 0; i < n; i++) {
      struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
      struct insn_info *ii = malloc(sizeof *ii);
      if (!ii) return;
      ii->raw = qemu_plugin_insn_vaddr(insn);
      ii->vaddr = map_alias(ii->raw);
      qemu_plugin_register_vcpu_insn_exec_cb(insn, exec_insn, QEMU_PLUGIN_CB_NO_REGS, ii);
    }
    return;
  }
  struct tb_info *ti = malloc(sizeof *ti);
  if (!ti) return;
  ti->raw = raw;
  ti->vaddr = vaddr;
  ti->n = (uint32_t)n;
  ti->key = key_of(vaddr);
  ti->id = S.next_tb_id++;
  if (S.gran == GRAN_BLOCK && !S.done) {
    /* The translation map entry: id, address, instruction sizes. Recorded whether or not the
     * recording has started, since a block translated before the start may run after it. */
    if (S.p + 32 + n >= S.cur->data + S.bufsize) rotate();
    uint8_t *p = S.p;
    p = put_uv(p, ((uint64_t)ti->id << 1) | 1);
    p = put_uv(p, zigzag((int64_t)vaddr));
    p = put_uv(p, n);
    for (size_t i = 0; i < n; i++) *p++ = (uint8_t)qemu_plugin_insn_size(qemu_plugin_tb_get_insn(tb, i));
    S.p = p;
    S.records++;
  }
  if (S.gran == GRAN_BLOCK) {
    qemu_plugin_register_vcpu_tb_exec_cb(tb, exec_block, QEMU_PLUGIN_CB_NO_REGS, ti);
  } else {
    qemu_plugin_register_vcpu_tb_exec_cb(tb, exec_function, QEMU_PLUGIN_CB_NO_REGS, ti);
  }
}

static size_t end_json(char *json, size_t cap, uint64_t t_end) {
  int len = snprintf(json, cap,
                     "{\"reason\":\"%s\",\"started\":%s,\"records\":%" PRIu64 ",\"instructions\":%" PRIu64
                     ",\"host_ns\":%" PRIu64 ",\"excluded_ns\":%" PRIu64 ",\"translations\":%" PRIu64
                     ",\"frames\":%" PRIu64 ",\"write_ns\":%" PRIu64 ",\"compression\":\"%s\",\"write_errors\":%" PRIu64 "}",
                     S.reason, S.started ? "true" : "false", S.total_records, S.ic, t_end, S.excluded,
                     S.translations, S.frames, S.write_ns, S.compress == ENC_ZSTD ? "zstd" : S.compress == ENC_ZLIB ? "zlib" : "none",
                     S.write_errors);
  return len < 0 ? 0 : (size_t)len;
}

static void on_exit_cb(qemu_plugin_id_t id, void *ud) {
  (void)id;
  (void)ud;
  /* The end frame: what the reader needs to know the recording is whole. */
  if (!S.done) {
    S.reason = "exit";
    S.done = true;
    S.recording = false;
    queue_end_frame();
  }
  pthread_mutex_lock(&S.lock);
  S.quit = true;
  pthread_cond_broadcast(&S.cond);
  pthread_mutex_unlock(&S.lock);
  pthread_join(S.writer, NULL);
  /* API 4: the system call entries, after everything else (the reader finds frames by type). */
  if (S.ylen > 0) write_frame('Y', (uint32_t)S.ycount, S.ybuf, S.ylen);
  if (S.write_errors) {
    char msg[256];
    snprintf(msg, sizeof msg, "boot-trace plugin: %" PRIu64 " failed writes (%s)\n", S.write_errors, S.write_error);
    qemu_plugin_outs(msg);
  }
  close(S.fd);
}

static bool load_splits(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  uint64_t n = 0;
  bool ok = fread(&n, 8, 1, f) == 1 && n < (1u << 26);
  if (ok) {
    S.splits = malloc(n * 8 + 1);
    S.kinds = malloc(n + 1);
    ok = S.splits && S.kinds && fread(S.splits, 8, n, f) == n && fread(S.kinds, 1, n, f) == n;
    S.nsplits = (size_t)n;
  }
  fclose(f);
  return ok;
}

static void fail(const char *what, const char *detail) {
  char msg[512];
  snprintf(msg, sizeof msg, "boot-trace plugin: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  qemu_plugin_outs(msg);
  fputs(msg, stderr);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                                               int argc, char **argv) {
  (void)info;
  S.t0 = now_ns();
  crc_init();
  const char *out = NULL, *splits = NULL;
  S.gran = GRAN_FUNCTION;
  S.from = 0;
  S.bufsize = 4096 * 1024;
  S.compress = ENC_ZLIB;
  S.level = 1;
  for (int i = 0; i < argc; i++) {
    char *eq = strchr(argv[i], '=');
    if (!eq) { fail("argument without '='", argv[i]); return -1; }
    size_t klen = (size_t)(eq - argv[i]);
    const char *v = eq + 1;
#define KEY(k) (klen == sizeof(k) - 1 && strncmp(argv[i], k, klen) == 0)
    if (KEY("out")) out = v;
    else if (KEY("splits")) splits = v;
    else if (KEY("gran")) {
      if (!strcmp(v, "function")) S.gran = GRAN_FUNCTION;
      else if (!strcmp(v, "block")) S.gran = GRAN_BLOCK;
      else if (!strcmp(v, "instruction")) S.gran = GRAN_INSTRUCTION;
      else { fail("unknown granularity", v); return -1; }
    } else if (KEY("from")) S.from = strtoull(v, NULL, 16);
    else if (KEY("until")) S.until = strtoull(v, NULL, 16);
    else if (KEY("max")) S.max_insns = strtoull(v, NULL, 10);
    else if (KEY("compress")) {
      if (!strcmp(v, "zlib")) S.compress = ENC_ZLIB;
      else if (!strcmp(v, "zstd")) S.compress = ENC_ZSTD;
      else if (!strcmp(v, "none")) S.compress = ENC_RAW;
      else { fail("unknown compression", v); return -1; }
    } else if (KEY("level")) S.level = atoi(v);
    else if (KEY("sysentry")) S.sys_entry = strtoull(v, NULL, 16);
    else if (KEY("kexec")) S.kexec_entry = strtoull(v, NULL, 16);
    else if (KEY("bufkb")) S.bufsize = (size_t)strtoull(v, NULL, 10) * 1024;
    else if (KEY("alias")) {
      if (sscanf(v, "%" SCNx64 ":%" SCNx64 ":%" SCNx64, &S.alias_ps, &S.alias_pe, &S.alias_vs) != 3) {
        fail("alias=PHYS_START:PHYS_END:VIRT_START expected", v);
        return -1;
      }
      S.alias_on = true;
    } else { fail("unknown argument", argv[i]); return -1; }
#undef KEY
  }
  if (!out) { fail("out=PATH missing", NULL); return -1; }
  if (S.bufsize < 64 * 1024) S.bufsize = 64 * 1024;
  if (splits && !load_splits(splits)) { fail("cannot read the function boundaries", splits); return -1; }
  S.fd = open(out, O_WRONLY | O_APPEND | O_CLOEXEC);
  if (S.fd < 0) { fail("cannot open the recording", strerror(errno)); return -1; }
  if (S.compress == ENC_ZSTD) {
    void *h = dlopen("libzstd.so.1", RTLD_NOW | RTLD_LOCAL);
    if (h) {
      S.zstd_bound = (size_t (*)(size_t))dlsym(h, "ZSTD_compressBound");
      S.zstd_compress = (size_t (*)(void *, size_t, const void *, size_t, int))dlsym(h, "ZSTD_compress");
      S.zstd_is_error = (unsigned (*)(size_t))dlsym(h, "ZSTD_isError");
    }
    if (!S.zstd_bound || !S.zstd_compress || !S.zstd_is_error) S.compress = ENC_RAW;
  } else if (S.compress == ENC_ZLIB) {
    void *h = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
    if (h) {
      S.zlib_bound = (unsigned long (*)(unsigned long))dlsym(h, "compressBound");
      S.zlib_compress2 = (int (*)(uint8_t *, unsigned long *, const uint8_t *, unsigned long, int))dlsym(h, "compress2");
    }
    if (!S.zlib_bound || !S.zlib_compress2) S.compress = ENC_RAW;
  }
  pthread_mutex_init(&S.lock, NULL);
  pthread_cond_init(&S.cond, NULL);
  for (int i = 0; i < NBUF; i++) {
    S.bufs[i].data = malloc(S.bufsize);
    if (!S.bufs[i].data) { fail("out of memory for buffers", NULL); return -1; }
    S.freeq[S.nfree++] = &S.bufs[i];
  }
  S.cur = S.freeq[--S.nfree];
  S.cur->type = 'R';
  S.p = S.cur->data;
  S.limit = S.cur->data + S.bufsize - MAX_ENTRY;
  if (S.from == 0) start_recording();
  if (pthread_create(&S.writer, NULL, writer_main, NULL) != 0) { fail("cannot start the writer thread", NULL); return -1; }
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
#if BT_API >= 4
  S.rbuf = g_byte_array_new();
  S.mbuf = g_byte_array_new();
  qemu_plugin_register_vcpu_init_cb(id, on_vcpu_init);
#endif
  qemu_plugin_register_atexit_cb(id, on_exit_cb, NULL);
  return 0;
}
