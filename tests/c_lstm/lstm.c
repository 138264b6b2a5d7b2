/* A one-layer unidirectional float32/float64 LSTM (torch.nn.LSTM's equations and gate order
   i, f, g, o) speaking lstm-conformance's exec protocol 2 (docs/exec-protocol.md):
       lstm REQUEST_DIR        reads REQUEST_DIR/request.json and *.npy, writes the answer there;
       lstm --exec-persistent  the same for every request directory named on a stdin line,
                               acknowledged by printing that line on stdout.
   Ops: capabilities, construct, load_state_dict, forward, trace (every gate of every step) and
   vjp (the backward pass, by hand). Plain C99, no dependencies; computes in double, rounds
   every operation of a float32 model to float as a float32 program would.
   Build flags:  -DEXEC_V1     answer protocol 1 (one process per request, no trace, no vjp);
                 -DSWAP_GATES  a broken copy that reads torch's f and g blocks the other way round;
                 -DBROKEN_O    a broken copy whose o gate is a tanh instead of a sigmoid. */
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
static void *mem[256];
static int nmem;
static void *alloc(long n) {
  void *p = calloc(n > 0 ? n : 1, 1);
  if (!p || nmem == 256) exit(4);
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
#ifdef BROKEN_O
#define OUT_GATE(z) R(tanh(z))
#else
#define OUT_GATE(z) sigmoid(z)
#endif

#define UNSUPPORTED                                                                                    \
  "\"bidirectional\": \"one direction only\", \"multi_layer\": \"one layer only\", "                    \
  "\"proj_size\": \"no projection (LSTMP)\", \"complex\": \"float32 and float64 only\", "               \
  "\"packed\": \"no PackedSequence input\", \"dropout\": \"one layer: no dropout between layers\", "    \
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

static const char *names[4] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"};

/* One request in the current directory `dir`. */
static void handle(void) {
  FILE *f = open_at("request.json", "rb");
  if (!f) fail("RuntimeError", "no request.json");
  req[fread(req, 1, sizeof req - 1, f)] = 0, fclose(f);
  const char *op = val("op"), *dtype = val("dtype");
  if (!op) fail("RuntimeError", "request.json has no op");
  if (is(op, "\"capabilities\"")) return write_text("response.json", CAPABILITIES);
  long I = ival("input_size"), H = ival("hidden_size"), G = 4 * H;
  int bias = bval("bias");
  f64 = is(dtype, "\"float64\"");
  if (I <= 0 || H <= 0) fail("ValueError", "input_size and hidden_size must be greater than zero");
  if (!f64 && !is(dtype, "\"float32\"")) fail("NotImplementedError", "float32 and float64 only");
  if (ival("num_layers") != 1 || bval("bidirectional") || ival("proj_size"))
    fail("NotImplementedError", "one-layer unidirectional LSTM without projection only");
  long cols[4] = {I, H, 0, 0};
  int np = bias ? 4 : 2;
  char file[96];
  if (is(op, "\"construct\"")) { /* initial parameters: zeros */
    write_text("response.json", bias ? "{\"protocol\": " PROTO ", \"parameters\": [\"weight_ih_l0\", \"weight_hh_l0\", "
                                       "\"bias_ih_l0\", \"bias_hh_l0\"]}\n"
                                     : "{\"protocol\": " PROTO ", \"parameters\": [\"weight_ih_l0\", \"weight_hh_l0\"]}\n");
    double *zeros = alloc(G * (I > H ? I : H) * sizeof(double));
    for (int k = 0; k < np; k++) {
      long shape[2] = {G, cols[k]};
      snprintf(file, sizeof file, "%s.npy", names[k]);
      write_npy(file, k < 2 ? 2 : 1, shape, zeros);
    }
    return;
  }
  Arr w[4], x, h0, c0;
  const char *block = strstr(req, "\"weights\": {"), *end = block ? strchr(block, '}') : NULL;
  int entries = 0;
  for (const char *p = block; p && p < end && (p = strstr(p + 1, ".npy\"")) && p < end;) entries++;
  for (int k = 0; k < np; k++) {
    snprintf(file, sizeof file, "%s.npy", names[k]);
    if (!val(names[k]) || !read_npy(file, &w[k])) fail("RuntimeError", "Missing key(s) in state_dict");
    if (w[k].nd != (k < 2 ? 2 : 1) || w[k].shape[0] != G || (k < 2 && w[k].shape[1] != cols[k]))
      fail("RuntimeError", "size mismatch in state_dict");
  }
  if (entries != np) fail("RuntimeError", "Unexpected key(s) in state_dict");
  if (is(op, "\"load_state_dict\"")) return;
  int vjp = is(op, "\"vjp\""), trace = is(op, "\"trace\"");
  if (!vjp && !trace && !is(op, "\"forward\"")) fail("NotImplementedError", "unknown op");
  if (bval("packed")) fail("NotImplementedError", "no PackedSequence input");
  if (!read_npy("input.npy", &x)) fail("AttributeError", "input is None");
  if (x.nd != 2 && x.nd != 3) fail("ValueError", "LSTM: Expected input to be 2D or 3D");
  if (x.f64 != f64) fail("ValueError", "RNN input dtype does not match weight dtype");
  if (x.shape[x.nd - 1] != I) fail("RuntimeError", "input.size(-1) must be equal to input_size");
  int batched = x.nd == 3, bf = batched && bval("batch_first");
  long L = x.shape[bf], N = batched ? x.shape[!bf] : 1;
  const char *hx = val("hx");
  int has_hx = hx && *hx == '[';
  if (hx && *hx == '"') fail("IndexError", "hx must be a tuple (h_0, c_0)");
  if (has_hx) {
    if (!read_npy("hx_0.npy", &h0) || !read_npy("hx_1.npy", &c0)) fail("RuntimeError", "hx needs (h_0, c_0)");
    if (h0.nd != x.nd || c0.nd != x.nd) fail("RuntimeError", "hx and cx must have the input's rank");
    if (h0.f64 != f64) fail("RuntimeError", "hidden[0] dtype does not match weight dtype");
    if (h0.shape[0] != 1 || c0.shape[0] != 1 || h0.shape[x.nd - 1] != H || c0.shape[x.nd - 1] != H ||
        (batched && (h0.shape[1] != N || c0.shape[1] != N)))
      fail("RuntimeError", "Expected hidden size (1, batch, hidden_size)");
  }
  if (L == 0) fail("RuntimeError", "Expected sequence length to be larger than 0 in RNN");

  /* forward, keeping every step's gates and states (time-major: row t * N + b) */
  long S = L * N * H;
  double *h = alloc(N * H * sizeof(double)), *c = alloc(N * H * sizeof(double));
  double *out = alloc(S * sizeof(double)), *z = alloc(G * sizeof(double));
  double *gate[6]; /* i, f, g, o, c, h of every step */
  for (int k = 0; k < 6; k++) gate[k] = alloc(S * sizeof(double));
  if (has_hx) memcpy(h, h0.d, N * H * sizeof(double)), memcpy(c, c0.d, N * H * sizeof(double));
  double *hinit = alloc(N * H * sizeof(double)), *cinit = alloc(N * H * sizeof(double));
  memcpy(hinit, h, N * H * sizeof(double)), memcpy(cinit, c, N * H * sizeof(double));
  for (long t = 0; t < L; t++) {
    for (long b = 0; b < N; b++) {
      const double *xt = x.d + (bf ? b * L + t : t * N + b) * I;
      double *hb = h + b * H, *cb = c + b * H;
      for (long r = 0; r < G; r++) {
        double s = bias ? R(w[2].d[r] + w[3].d[r]) : 0.0;
        for (long k = 0; k < I; k++) s = R(s + R(w[0].d[r * I + k] * xt[k]));
        for (long k = 0; k < H; k++) s = R(s + R(w[1].d[r * H + k] * hb[k]));
        z[r] = s;
      }
      for (long j = 0; j < H; j++) {
        double i = sigmoid(z[GI * H + j]), fg = sigmoid(z[GF * H + j]), g = R(tanh(z[GG * H + j]));
        double o = OUT_GATE(z[GO * H + j]);
        cb[j] = R(R(fg * cb[j]) + R(i * g));
        hb[j] = R(o * R(tanh(cb[j])));
        long row = (t * N + b) * H + j;
        gate[0][row] = i, gate[1][row] = fg, gate[2][row] = g, gate[3][row] = o;
        gate[4][row] = cb[j], gate[5][row] = hb[j];
        out[(bf ? b * L + t : t * N + b) * H + j] = hb[j];
      }
    }
  }
  long oshape[3] = {x.shape[0], x.shape[1], H}, sshape[3] = {1, N, H}, tshape[3] = {L, N, H};
  if (!batched) oshape[1] = H, sshape[1] = H, tshape[1] = H;
  if (trace) {
    for (int k = 0; k < 6; k++) {
      snprintf(file, sizeof file, "trace_l0_d0_%c.npy", "ifgoch"[k]);
      write_npy(file, x.nd, tshape, gate[k]);
    }
    return;
  }
  if (!vjp) {
    write_npy("output.npy", x.nd, oshape, out);
    write_npy("h_n.npy", x.nd, sshape, h);
    write_npy("c_n.npy", x.nd, sshape, c);
    return;
  }

  /* vjp: back through time, in double; gradients of the sums z = W_ih x + b_ih + W_hh h + b_hh */
  Arr gout, gh, gc;
  if (!read_npy("grad_output.npy", &gout) || !read_npy("grad_h_n.npy", &gh) || !read_npy("grad_c_n.npy", &gc))
    fail("RuntimeError", "vjp needs grad_output, grad_h_n and grad_c_n");
  if (gout.n != S || gh.n != N * H || gc.n != N * H) fail("RuntimeError", "upstream gradients of the wrong size");
  double *dh = alloc(N * H * sizeof(double)), *dc = alloc(N * H * sizeof(double)), *dz = alloc(G * sizeof(double));
  double *dx = alloc(L * N * I * sizeof(double)), *dw[4];
  for (int k = 0; k < 4; k++) dw[k] = alloc(G * (k < 2 ? cols[k] : 1) * sizeof(double));
  memcpy(dh, gh.d, N * H * sizeof(double)), memcpy(dc, gc.d, N * H * sizeof(double));
  for (long t = L - 1; t >= 0; t--) {
    for (long b = 0; b < N; b++) {
      double *dhb = dh + b * H, *dcb = dc + b * H;
      const double *xt = x.d + (bf ? b * L + t : t * N + b) * I;
      const double *hprev = t ? gate[5] + ((t - 1) * N + b) * H : hinit + b * H;
      const double *cprev = t ? gate[4] + ((t - 1) * N + b) * H : cinit + b * H;
      for (long j = 0; j < H; j++) {
        long row = (t * N + b) * H + j;
        double i = gate[0][row], fg = gate[1][row], g = gate[2][row], o = gate[3][row];
        double dht = dhb[j] + gout.d[(bf ? b * L + t : t * N + b) * H + j], tc = tanh(gate[4][row]);
        double dct = dcb[j] + dht * o * (1 - tc * tc);
        dz[GI * H + j] = dct * g * i * (1 - i);
        dz[GF * H + j] = dct * cprev[j] * fg * (1 - fg);
        dz[GG * H + j] = dct * i * (1 - g * g);
        dz[GO * H + j] = dht * tc * o * (1 - o);
        dcb[j] = dct * fg;
      }
      double *dxt = dx + (bf ? b * L + t : t * N + b) * I;
      for (long k = 0; k < H; k++) dhb[k] = 0;
      for (long r = 0; r < G; r++) {
        for (long k = 0; k < I; k++) dw[0][r * I + k] += dz[r] * xt[k], dxt[k] += w[0].d[r * I + k] * dz[r];
        for (long k = 0; k < H; k++) dw[1][r * H + k] += dz[r] * hprev[k], dhb[k] += w[1].d[r * H + k] * dz[r];
        dw[2][r] += dz[r], dw[3][r] += dz[r];
      }
    }
  }
  write_npy("grad_input.npy", x.nd, x.shape, dx);
  write_npy("grad_h0.npy", x.nd, sshape, dh);
  write_npy("grad_c0.npy", x.nd, sshape, dc);
  for (int k = 0; k < np; k++) {
    snprintf(file, sizeof file, "grad_%s.npy", names[k]);
    write_npy(file, w[k].nd, w[k].shape, dw[k]);
  }
}

static void serve(const char *request_dir) {
  dir = request_dir;
  if (!setjmp(failed)) handle();
  release();
}

int main(int argc, char **argv) {
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
