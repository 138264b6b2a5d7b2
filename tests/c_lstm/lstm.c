/* A stacked, optionally bidirectional float32/float64 LSTM (torch.nn.LSTM's equations and gate
   order i, f, g, o; no projection, no packed input, no dropout between layers) speaking
   lstm-conformance's exec protocol 2 (docs/exec-protocol.md):
       lstm REQUEST_DIR        reads REQUEST_DIR/request.json and *.npy, writes the answer there;
       lstm --exec-persistent  the same for every request directory named on a stdin line,
                               acknowledged by printing that line on stdout.
   Ops: capabilities, construct, load_state_dict, forward, trace (every gate of every step) and
   vjp (the backward pass, by hand). Plain C99, no dependencies; computes in double, rounds
   every operation of a float32 model to float as a float32 program would.
   Build flags:  -DEXEC_V1     answer protocol 1 (one process per request, no trace, no vjp);
                 -DSWAP_GATES  a broken copy that reads torch's f and g blocks the other way round;
                 -DBROKEN_O    a broken copy whose o gate is a tanh instead of a sigmoid;
                 -DBROKEN_O_DEEP_REVERSE  the same, only in the reverse direction of layers 1+;
                 -DSTARTUP_MS=N  wait N ms when the process starts, as a port that loads a runtime
                               (a JVM, a CUDA context) would: what protocol 2 pays once per worker
                               and protocol 1 once per request (benchmarks/test_exec_requests.py). */
#ifdef STARTUP_MS
#define _POSIX_C_SOURCE 199309L /* nanosleep */
#include <time.h>
#endif
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SWAP_GATES
enum { GI = 0, GF = 2, GG = 1, GO = 3 };
#else
enum { GI = 0, GF = 1, GG = 2, GO = 3 };
#endif
typedef struct { int nd, f64; long shape[8], n; double *d; } Arr;
static const char *dir;
static int f64; /* float32 models round every operation to float, as a float32 program would */
#define R(v) (f64 ? (v) : (double)(float)(v))
static char req[1 << 16];
static jmp_buf failed; /* fail() returns here: the request is answered with error.json */

/* every allocation of a request, freed when it is answered (the persistent mode serves many) */
static void *mem[1024];
static int nmem;
static void *alloc(long n) {
  void *p = calloc(n > 0 ? n : 1, 1);
  if (!p || nmem == 1024) exit(4);
  return mem[nmem++] = p;
}
static void release(void) { while (nmem) free(mem[--nmem]); }

static FILE *open_at(const char *name, const char *mode) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  return fopen(path, mode);
}
/* error.json {"type": ..., "message": ...}: the adapter raises that builtin exception */
static void fail(const char *type, const char *msg) {
  FILE *f = open_at("error.json", "w");
  if (!f) exit(3);
  fprintf(f, "{\"type\": \"%s\", \"message\": \"%s\"}\n", type, msg);
  fclose(f);
  longjmp(failed, 1);
}
/* request.json has one key per line and no key twice, so a key's value is found by search */
static const char *val(const char *key) {
  char pat[128];
  snprintf(pat, sizeof pat, "\"%s\": ", key);
  const char *p = strstr(req, pat);
  return p ? p + strlen(pat) : NULL;
}
static long ival(const char *key) { const char *v = val(key); return v ? atol(v) : 0; }
static int bval(const char *key) { const char *v = val(key); return v && !strncmp(v, "true", 4); }
static int is(const char *v, const char *s) { return v && !strncmp(v, s, strlen(s)); }

static int read_npy(const char *name, Arr *a) {
  FILE *f = open_at(name, "rb");
  if (!f) return 0;
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  unsigned char *raw = alloc(size + 1);
  fseek(f, 0, SEEK_SET);
  long got = (long)fread(raw, 1, size, f);
  fclose(f);
  if (got != size || size < 10 || memcmp(raw, "\x93NUMPY", 6)) fail("RuntimeError", "not a .npy file");
  long len = raw[8] | raw[9] << 8, start = 10;
  if (raw[6] >= 2) { /* format 2.0/3.0: 4-byte header length */
    if (size < 12) fail("RuntimeError", "truncated .npy");
    len |= (long)raw[10] << 16 | (long)raw[11] << 24, start = 12;
  }
  if (start + len > size) fail("RuntimeError", "truncated .npy header");
  char *hdr = alloc(len + 1);
  memcpy(hdr, raw + start, len);
  const char *descr = strstr(hdr, "'descr': '"), *shape = strstr(hdr, "'shape': (");
  if (!descr || !shape || !strstr(hdr, "'fortran_order': False")) fail("RuntimeError", "bad .npy header");
  descr += 10;
  if (!strncmp(descr, "<f8", 3)) a->f64 = 1;
  else if (!strncmp(descr, "<f4", 3)) a->f64 = 0;
  else fail("ValueError", "arrays must be float32 or float64");
  char *p = (char *)shape + 10;
  a->nd = 0, a->n = 1;
  while (*p != ')' && a->nd < 8) {
    a->shape[a->nd] = strtol(p, &p, 10), a->n *= a->shape[a->nd++];
    while (*p == ',' || *p == ' ') p++;
  }
  if (start + len + a->n * (a->f64 ? 8 : 4) > size) fail("RuntimeError", "truncated .npy");
  a->d = alloc(a->n * sizeof(double));
  const unsigned char *data = raw + start + len;
  for (long i = 0; i < a->n; i++) {
    double d; float s;
    if (a->f64) memcpy(&d, data + 8 * i, 8), a->d[i] = d;
    else memcpy(&s, data + 4 * i, 4), a->d[i] = s;
  }
  return 1;
}
static void write_npy(const char *name, int nd, const long *shape, const double *d) {
  char hdr[256], dims[160] = "";
  long n = 1;
  for (int k = 0; k < nd; k++) {
    n *= shape[k];
    sprintf(dims + strlen(dims), k || nd > 1 ? "%ld, " : "%ld,", shape[k]);
  }
  if (nd > 1) dims[strlen(dims) - 2] = 0;
  int len = sprintf(hdr, "{'descr': '<f%d', 'fortran_order': False, 'shape': (%s), }", f64 ? 8 : 4, dims);
  while ((10 + len + 1) % 64) hdr[len++] = ' ';
  hdr[len++] = '\n';
  FILE *f = open_at(name, "wb");
  if (!f) exit(3);
  fwrite("\x93NUMPY\x01\x00", 1, 8, f), fputc(len & 255, f), fputc(len >> 8, f), fwrite(hdr, 1, len, f);
  for (long i = 0; i < n; i++) {
    float s = (float)d[i];
    f64 ? fwrite(&d[i], 8, 1, f) : fwrite(&s, 4, 1, f);
  }
  fclose(f);
}
static void write_text(const char *name, const char *text) {
  FILE *f = open_at(name, "w");
  if (!f) exit(3);
  fputs(text, f), fclose(f);
}
static double sigmoid(double z) { return R(1.0 / R(1.0 + R(exp(-z)))); }
/* the o gate of layer k, direction d */
static double out_gate(double z, int k, int d) {
  (void)k, (void)d;
#if defined(BROKEN_O)
  return R(tanh(z));
#elif defined(BROKEN_O_DEEP_REVERSE)
  return k >= 1 && d == 1 ? R(tanh(z)) : sigmoid(z);
#else
  return sigmoid(z);
#endif
}

#define UNSUPPORTED                                                                                    \
  "\"proj_size\": \"no projection (LSTMP)\", \"complex\": \"float32 and float64 only\", "               \
  "\"packed\": \"no PackedSequence input\", \"dropout\": \"no dropout between layers\", "               \
  "\"cell\": \"no separate LSTMCell\", \"errors\": \"checks input rank/size and hx shapes only; "       \
  "Python-level argument types and hx structure are not checked\""
#ifdef EXEC_V1
#define PROTO "1"
#define CAPABILITIES                                                                                   \
  "{\"protocol\": 1, \"unsupported\": {" UNSUPPORTED ", \"gradients\": \"forward only (no vjp)\"}}\n"
#else
#define PROTO "2"
#define CAPABILITIES                                                                                   \
  "{\"protocol\": 2, \"persistent\": true, \"ops\": [\"trace\", \"vjp\"], \"version\": \"c_lstm 2\", " \
  "\"unsupported\": {" UNSUPPORTED "}}\n"
#endif

static const char *bases[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
static int layers, dirs, bias, per; /* per: parameters per layer and direction (4, or 2 without bias) */
static long I, H;

/* parameter m (weight_ih, weight_hh, bias_ih, bias_hh) of layer k, direction d: its name, its columns */
static const char *pname(int k, int d, int m) {
  static char name[64];
  snprintf(name, sizeof name, "%s_l%d%s", bases[m], k, d ? "_reverse" : "");
  return name;
}
static long pcols(int k, int m) { return m == 0 ? (k ? dirs * H : I) : m == 1 ? H : 0; }

/* One request in the current directory `dir`. */
static void handle(void) {
  FILE *f = open_at("request.json", "rb");
  if (!f) fail("RuntimeError", "no request.json");
  req[fread(req, 1, sizeof req - 1, f)] = 0, fclose(f);
  const char *op = val("op"), *dtype = val("dtype");
  if (!op) fail("RuntimeError", "request.json has no op");
  if (is(op, "\"capabilities\"")) return write_text("response.json", CAPABILITIES);
  I = ival("input_size"), H = ival("hidden_size");
  long G = 4 * H;
  layers = (int)ival("num_layers"), dirs = bval("bidirectional") ? 2 : 1, bias = bval("bias"), per = bias ? 4 : 2;
  f64 = is(dtype, "\"float64\"");
  if (I <= 0 || H <= 0) fail("ValueError", "input_size and hidden_size must be greater than zero");
  if (layers < 1) fail("ValueError", "num_layers must be greater than or equal to 1");
  if (!f64 && !is(dtype, "\"float32\"")) fail("NotImplementedError", "float32 and float64 only");
  if (ival("proj_size")) fail("NotImplementedError", "no projection (LSTMP)");
  int np = layers * dirs * per;
  char file[96];
  if (is(op, "\"construct\"")) { /* initial parameters: zeros */
    char *list = alloc(np * 64 + 64);
    strcpy(list, "{\"protocol\": " PROTO ", \"parameters\": [");
    for (int p = 0; p < np; p++)
      sprintf(list + strlen(list), "%s\"%s\"", p ? ", " : "", pname(p / per / dirs, p / per % dirs, p % per));
    write_text("response.json", strcat(list, "]}\n"));
    double *zeros = alloc(G * (I > dirs * H ? I : dirs * H) * sizeof(double));
    for (int p = 0; p < np; p++) {
      int k = p / per / dirs, m = p % per;
      long shape[2] = {G, pcols(k, m)};
      snprintf(file, sizeof file, "%s.npy", pname(k, p / per % dirs, m));
      write_npy(file, m < 2 ? 2 : 1, shape, zeros);
    }
    return;
  }
  Arr *w = alloc(np * sizeof(Arr)), x, h0, c0; /* w[(k * dirs + d) * per + m] */
  const char *block = strstr(req, "\"weights\": {"), *end = block ? strchr(block, '}') : NULL;
  int entries = 0;
  for (const char *p = block; p && p < end && (p = strstr(p + 1, ".npy\"")) && p < end;) entries++;
  for (int p = 0; p < np; p++) {
    int k = p / per / dirs, m = p % per;
    const char *name = pname(k, p / per % dirs, m);
    snprintf(file, sizeof file, "%s.npy", name);
    if (!val(name) || !read_npy(file, &w[p])) fail("RuntimeError", "Missing key(s) in state_dict");
    if (w[p].nd != (m < 2 ? 2 : 1) || w[p].shape[0] != G || (m < 2 && w[p].shape[1] != pcols(k, m)))
      fail("RuntimeError", "size mismatch in state_dict");
  }
  if (entries != np) fail("RuntimeError", "Unexpected key(s) in state_dict");
  if (is(op, "\"load_state_dict\"")) return;
  int vjp = is(op, "\"vjp\""), trace = is(op, "\"trace\"");
  if (!vjp && !trace && !is(op, "\"forward\"")) fail("NotImplementedError", "unknown op");
  if (bval("packed")) fail("NotImplementedError", "no PackedSequence input");
  if (bval("training") && layers > 1 && strtod(val("dropout") ? val("dropout") : "0", NULL) > 0)
    fail("NotImplementedError", "no dropout between layers");
  if (!read_npy("input.npy", &x)) fail("AttributeError", "input is None");
  if (x.nd != 2 && x.nd != 3) fail("ValueError", "LSTM: Expected input to be 2D or 3D");
  if (x.f64 != f64) fail("ValueError", "RNN input dtype does not match weight dtype");
  if (x.shape[x.nd - 1] != I) fail("RuntimeError", "input.size(-1) must be equal to input_size");
  int batched = x.nd == 3, bf = batched && bval("batch_first");
  long T = x.shape[bf], N = batched ? x.shape[!bf] : 1, S = layers * dirs; /* S states */
  const char *hx = val("hx");
  int has_hx = hx && *hx == '[';
  if (hx && *hx == '"') fail("IndexError", "hx must be a tuple (h_0, c_0)");
  if (has_hx) {
    if (!read_npy("hx_0.npy", &h0) || !read_npy("hx_1.npy", &c0)) fail("RuntimeError", "hx needs (h_0, c_0)");
    if (h0.nd != x.nd || c0.nd != x.nd) fail("RuntimeError", "hx and cx must have the input's rank");
    if (h0.f64 != f64) fail("RuntimeError", "hidden[0] dtype does not match weight dtype");
    if (h0.shape[0] != S || c0.shape[0] != S || h0.shape[x.nd - 1] != H || c0.shape[x.nd - 1] != H ||
        (batched && (h0.shape[1] != N || c0.shape[1] != N)))
      fail("RuntimeError", "Expected hidden size (num_layers * num_directions, batch, hidden_size)");
  }
  if (T == 0) fail("RuntimeError", "Expected sequence length to be larger than 0 in RNN");

  /* forward, time-major inside (row t * N + b), keeping every step's gates and states per layer
     and direction: gate[(k * dirs + d) * 6 + q] for q = i, f, g, o, c, h */
  long DH = dirs * H, rows = T * N;
  double *x0 = alloc(rows * I * sizeof(double)), *z = alloc(G * sizeof(double));
  for (long t = 0; t < T; t++)
    for (long b = 0; b < N; b++) memcpy(x0 + (t * N + b) * I, x.d + (bf ? b * T + t : t * N + b) * I, I * sizeof(double));
  double **out = alloc(layers * sizeof(double *)), **gate = alloc(S * 6 * sizeof(double *));
  double *hinit = alloc(S * N * H * sizeof(double)), *cinit = alloc(S * N * H * sizeof(double));
  double *hn = alloc(S * N * H * sizeof(double)), *cn = alloc(S * N * H * sizeof(double));
  if (has_hx) memcpy(hinit, h0.d, S * N * H * sizeof(double)), memcpy(cinit, c0.d, S * N * H * sizeof(double));
  memcpy(hn, hinit, S * N * H * sizeof(double)), memcpy(cn, cinit, S * N * H * sizeof(double));
  for (int k = 0; k < layers; k++) {
    const double *in = k ? out[k - 1] : x0;
    long F = k ? DH : I;
    out[k] = alloc(rows * DH * sizeof(double));
    for (int d = 0; d < dirs; d++) {
      const Arr *wk = w + (k * dirs + d) * per;
      double **gk = gate + (k * dirs + d) * 6, *h = hn + (k * dirs + d) * N * H, *c = cn + (k * dirs + d) * N * H;
      for (int q = 0; q < 6; q++) gk[q] = alloc(rows * H * sizeof(double));
      for (long s = 0; s < T; s++) {
        long t = d ? T - 1 - s : s;
        for (long b = 0; b < N; b++) {
          const double *xt = in + (t * N + b) * F;
          double *hb = h + b * H, *cb = c + b * H;
          for (long r = 0; r < G; r++) {
            double sum = bias ? R(wk[2].d[r] + wk[3].d[r]) : 0.0;
            for (long q = 0; q < F; q++) sum = R(sum + R(wk[0].d[r * F + q] * xt[q]));
            for (long q = 0; q < H; q++) sum = R(sum + R(wk[1].d[r * H + q] * hb[q]));
            z[r] = sum;
          }
          for (long j = 0; j < H; j++) {
            double i = sigmoid(z[GI * H + j]), fg = sigmoid(z[GF * H + j]), g = R(tanh(z[GG * H + j]));
            double o = out_gate(z[GO * H + j], k, d);
            cb[j] = R(R(fg * cb[j]) + R(i * g));
            hb[j] = R(o * R(tanh(cb[j])));
            long row = (t * N + b) * H + j;
            gk[0][row] = i, gk[1][row] = fg, gk[2][row] = g, gk[3][row] = o, gk[4][row] = cb[j], gk[5][row] = hb[j];
            out[k][(t * N + b) * DH + d * H + j] = hb[j];
          }
        }
      }
    }
  }
  long oshape[3] = {x.shape[0], x.shape[1], DH}, sshape[3] = {S, N, H}, tshape[3] = {T, N, H};
  if (!batched) oshape[1] = DH, sshape[1] = H, tshape[1] = H;
  if (trace) {
    for (int p = 0; p < S * 6; p++) {
      snprintf(file, sizeof file, "trace_l%d_d%d_%c.npy", p / 6 / dirs, p / 6 % dirs, "ifgoch"[p % 6]);
      write_npy(file, x.nd, tshape, gate[p]);
    }
    return;
  }
  double *y = alloc(rows * DH * sizeof(double)); /* the last layer's output in the caller's layout */
  for (long t = 0; t < T; t++)
    for (long b = 0; b < N; b++)
      memcpy(y + (bf ? b * T + t : t * N + b) * DH, out[layers - 1] + (t * N + b) * DH, DH * sizeof(double));
  if (!vjp) {
    write_npy("output.npy", x.nd, oshape, y);
    write_npy("h_n.npy", x.nd, sshape, hn);
    write_npy("c_n.npy", x.nd, sshape, cn);
    return;
  }

  /* vjp: layer by layer from the top, back through time in each direction, in double; the
     gradient of a layer's input is the upstream gradient of the layer below's output */
  Arr gout, gh, gc;
  if (!read_npy("grad_output.npy", &gout) || !read_npy("grad_h_n.npy", &gh) || !read_npy("grad_c_n.npy", &gc))
    fail("RuntimeError", "vjp needs grad_output, grad_h_n and grad_c_n");
  if (gout.n != rows * DH || gh.n != S * N * H || gc.n != S * N * H) fail("RuntimeError", "upstream gradients of the wrong size");
  double *dy = alloc(rows * DH * sizeof(double)), *dz = alloc(G * sizeof(double)), *dx = NULL;
  for (long t = 0; t < T; t++)
    for (long b = 0; b < N; b++)
      memcpy(dy + (t * N + b) * DH, gout.d + (bf ? b * T + t : t * N + b) * DH, DH * sizeof(double));
  double *dh = alloc(S * N * H * sizeof(double)), *dc = alloc(S * N * H * sizeof(double)), **dw = alloc(np * sizeof(double *));
  memcpy(dh, gh.d, S * N * H * sizeof(double)), memcpy(dc, gc.d, S * N * H * sizeof(double));
  for (int p = 0; p < np; p++) dw[p] = alloc(G * (pcols(p / per / dirs, p % per) ? pcols(p / per / dirs, p % per) : 1) * sizeof(double));
  for (int k = layers - 1; k >= 0; k--) {
    const double *in = k ? out[k - 1] : x0;
    long F = k ? DH : I;
    dx = alloc(rows * F * sizeof(double));
    for (int d = 0; d < dirs; d++) {
      int sd = k * dirs + d;
      const Arr *wk = w + sd * per;
      double **gk = gate + sd * 6, **dwk = dw + sd * per;
      for (long s = T - 1; s >= 0; s--) {
        long t = d ? T - 1 - s : s, tp = d ? t + 1 : t - 1; /* tp: the step before, in processing order */
        for (long b = 0; b < N; b++) {
          double *dhb = dh + (sd * N + b) * H, *dcb = dc + (sd * N + b) * H;
          const double *xt = in + (t * N + b) * F;
          const double *hprev = s ? gk[5] + (tp * N + b) * H : hinit + (sd * N + b) * H;
          const double *cprev = s ? gk[4] + (tp * N + b) * H : cinit + (sd * N + b) * H;
          for (long j = 0; j < H; j++) {
            long row = (t * N + b) * H + j;
            double i = gk[0][row], fg = gk[1][row], g = gk[2][row], o = gk[3][row], tc = tanh(gk[4][row]);
            double dht = dhb[j] + dy[(t * N + b) * DH + d * H + j], dct = dcb[j] + dht * o * (1 - tc * tc);
            dz[GI * H + j] = dct * g * i * (1 - i);
            dz[GF * H + j] = dct * cprev[j] * fg * (1 - fg);
            dz[GG * H + j] = dct * i * (1 - g * g);
            dz[GO * H + j] = dht * tc * o * (1 - o);
            dcb[j] = dct * fg;
          }
          double *dxt = dx + (t * N + b) * F;
          for (long q = 0; q < H; q++) dhb[q] = 0;
          for (long r = 0; r < G; r++) {
            for (long q = 0; q < F; q++) dwk[0][r * F + q] += dz[r] * xt[q], dxt[q] += wk[0].d[r * F + q] * dz[r];
            for (long q = 0; q < H; q++) dwk[1][r * H + q] += dz[r] * hprev[q], dhb[q] += wk[1].d[r * H + q] * dz[r];
            if (bias) dwk[2][r] += dz[r], dwk[3][r] += dz[r];
          }
        }
      }
    }
    dy = dx;
  }
  double *gx = alloc(rows * I * sizeof(double));
  for (long t = 0; t < T; t++)
    for (long b = 0; b < N; b++) memcpy(gx + (bf ? b * T + t : t * N + b) * I, dx + (t * N + b) * I, I * sizeof(double));
  write_npy("grad_input.npy", x.nd, x.shape, gx);
  write_npy("grad_h0.npy", x.nd, sshape, dh);
  write_npy("grad_c0.npy", x.nd, sshape, dc);
  for (int p = 0; p < np; p++) {
    snprintf(file, sizeof file, "grad_%s.npy", pname(p / per / dirs, p / per % dirs, p % per));
    write_npy(file, w[p].nd, w[p].shape, dw[p]);
  }
}

static void serve(const char *request_dir) {
  dir = request_dir;
  if (!setjmp(failed)) handle();
  release();
}

int main(int argc, char **argv) {
#ifdef STARTUP_MS
  struct timespec startup = {STARTUP_MS / 1000, (STARTUP_MS % 1000) * 1000000L};
  nanosleep(&startup, NULL);
#endif
  if (argc != 2) return fprintf(stderr, "usage: %s REQUEST_DIR | --exec-persistent\n", argv[0]), 2;
  if (strcmp(argv[1], "--exec-persistent")) return serve(argv[1]), 0;
  static char line[4096]; /* persistent: one request directory per line, acknowledged in kind */
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\n")] = 0;
    serve(line);
    printf("%s\n", line);
    fflush(stdout);
  }
  return 0;
}
