/* A one-layer unidirectional float32/float64 LSTM (torch.nn.LSTM's equations and gate order
   i, f, g, o) speaking lstm-conformance's exec protocol 1 (docs/exec-protocol.md):
       lstm REQUEST_DIR    reads REQUEST_DIR/request.json and *.npy, writes the answer there.
   Plain C99, no dependencies; computes in double, stores in the model's dtype.
   -DSWAP_GATES builds a broken copy that reads torch's f and g blocks the other way round. */
#include <math.h>
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
  exit(0);
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

static int read_npy(const char *name, Arr *a) {
  unsigned char pre[12];
  char hdr[4096];
  FILE *f = open_at(name, "rb");
  if (!f) return 0;
  if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6)) fail("RuntimeError", "not a .npy file");
  unsigned long len = pre[8] | pre[9] << 8;
  if (pre[6] >= 2) { /* format 2.0/3.0: 4-byte header length */
    if (fread(pre + 10, 1, 2, f) != 2) fail("RuntimeError", "truncated .npy");
    len |= (unsigned long)pre[10] << 16 | (unsigned long)pre[11] << 24;
  }
  if (len >= sizeof hdr || fread(hdr, 1, len, f) != len) fail("RuntimeError", ".npy header too long");
  hdr[len] = 0;
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
  a->d = malloc((a->n ? a->n : 1) * sizeof(double));
  for (long i = 0; i < a->n; i++) {
    double d; float s;
    if (a->f64 ? fread(&d, 8, 1, f) != 1 : fread(&s, 4, 1, f) != 1) fail("RuntimeError", "truncated .npy");
    a->d[i] = a->f64 ? d : s;
  }
  fclose(f);
  return 1;
}
static void write_npy(const char *name, int f64, int nd, const long *shape, const double *d) {
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
  fwrite("\x93NUMPY\x01\x00", 1, 8, f), fputc(len & 255, f), fputc(len >> 8, f), fwrite(hdr, 1, len, f);
  for (long i = 0; i < n; i++) {
    float s = (float)d[i];
    f64 ? fwrite(&d[i], 8, 1, f) : fwrite(&s, 4, 1, f);
  }
  fclose(f);
}
static double sigmoid(double z) { return R(1.0 / R(1.0 + R(exp(-z)))); }

int main(int argc, char **argv) {
  if (argc != 2) return fprintf(stderr, "usage: %s REQUEST_DIR\n", argv[0]), 2;
  dir = argv[1];
  FILE *f = open_at("request.json", "rb");
  if (!f) return perror("request.json"), 2;
  req[fread(req, 1, sizeof req - 1, f)] = 0, fclose(f);
  const char *op = val("op"), *dtype = val("dtype");
  if (!op) fail("RuntimeError", "request.json has no op");
  if (op && !strncmp(op, "\"capabilities\"", 14)) {
    f = open_at("response.json", "w");
    fputs("{\"protocol\": 1, \"unsupported\": {\"bidirectional\": \"one direction only\", "
          "\"multi_layer\": \"one layer only\", \"proj_size\": \"no projection (LSTMP)\", "
          "\"complex\": \"float32 and float64 only\", \"packed\": \"no PackedSequence input\", "
          "\"dropout\": \"one layer: no dropout between layers\", \"gradients\": \"forward only (no vjp)\", "
          "\"cell\": \"no separate LSTMCell\", \"errors\": \"checks input rank/size and hx shapes only; "
          "Python-level argument types and hx structure are not checked\"}}\n", f);
    return fclose(f), 0;
  }
  long I = ival("input_size"), H = ival("hidden_size"), G = 4 * H;
  int bias = bval("bias");
  f64 = dtype && !strncmp(dtype, "\"float64\"", 9);
  if (I <= 0 || H <= 0) fail("ValueError", "input_size and hidden_size must be greater than zero");
  if (!f64 && (!dtype || strncmp(dtype, "\"float32\"", 9))) fail("NotImplementedError", "float32 and float64 only");
  if (ival("num_layers") != 1 || bval("bidirectional") || ival("proj_size"))
    fail("NotImplementedError", "one-layer unidirectional LSTM without projection only");
  const char *names[4] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"};
  long cols[4] = {I, H, 0, 0};
  int np = bias ? 4 : 2;
  if (!strncmp(op, "\"construct\"", 11)) { /* initial parameters: zeros */
    f = open_at("response.json", "w");
    fprintf(f, "{\"protocol\": 1, \"parameters\": [\"%s\", \"%s\"%s]}\n", names[0], names[1],
            bias ? ", \"bias_ih_l0\", \"bias_hh_l0\"" : "");
    fclose(f);
    double *zeros = calloc(G * (I > H ? I : H), sizeof(double));
    for (int k = 0; k < np; k++) {
      long shape[2] = {G, cols[k]};
      char file[64];
      snprintf(file, sizeof file, "%s.npy", names[k]);
      write_npy(file, f64, k < 2 ? 2 : 1, shape, zeros);
    }
    return 0;
  }
  Arr w[4], x, h0, c0;
  const char *block = strstr(req, "\"weights\": {"), *end = block ? strchr(block, '}') : NULL;
  int entries = 0;
  for (const char *p = block; p && p < end && (p = strstr(p + 1, ".npy\"")) && p < end;) entries++;
  for (int k = 0; k < np; k++) {
    char file[64];
    snprintf(file, sizeof file, "%s.npy", names[k]);
    if (!val(names[k]) || !read_npy(file, &w[k])) fail("RuntimeError", "Missing key(s) in state_dict");
    if (w[k].nd != (k < 2 ? 2 : 1) || w[k].shape[0] != G || (k < 2 && w[k].shape[1] != cols[k]))
      fail("RuntimeError", "size mismatch in state_dict");
  }
  if (entries != np) fail("RuntimeError", "Unexpected key(s) in state_dict");
  if (!strncmp(op, "\"load_state_dict\"", 17)) return 0;
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
  double *h = calloc(N * H + 1, sizeof(double)), *c = calloc(N * H + 1, sizeof(double));
  double *out = malloc((L * N * H + 1) * sizeof(double)), *z = malloc(G * sizeof(double));
  if (has_hx) memcpy(h, h0.d, N * H * sizeof(double)), memcpy(c, c0.d, N * H * sizeof(double));
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
        cb[j] = R(R(fg * cb[j]) + R(i * g));
        hb[j] = R(sigmoid(z[GO * H + j]) * R(tanh(cb[j])));
        out[(bf ? b * L + t : t * N + b) * H + j] = hb[j];
      }
    }
  }
  long oshape[3] = {x.shape[0], x.shape[1], H}, sshape[3] = {1, N, H};
  if (!batched) oshape[1] = H, sshape[1] = H;
  write_npy("output.npy", f64, x.nd, oshape, out);
  write_npy("h_n.npy", f64, x.nd, sshape, h);
  write_npy("c_n.npy", f64, x.nd, sshape, c);
  return 0;
}
