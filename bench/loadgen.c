// loadgen: one load generator for panal and Redis, so both stores get the
// same client. Single-threaded epoll; `-c` connections, each with `-P`
// separate requests in flight (not batched into one frame: each is its own
// request, written as soon as an answer frees a place); every answer is
// checked (a GET must return the value its key was loaded with).
//
//   loadgen [--redis] [--db DB] -h HOST -p PORT[,PORT...] -c 50 -P 16 -n 1000000
//           -r 100000 -d 32 -t set|get [--load] [--route] [--seconds 60]
//
// --load: SET every key of the key space once (in key order) before the run.
// --route (panal): ask the first node for the slot map (ROUTE_MAP) and send
// each key only on connections to the node of its slot's primary, as a
// routing client does (connections go round robin over the -p ports; a key
// whose primary is on no listed port goes on any connection).
// Output (one line, key=value): ops, seconds, ops_per_s, p50_us, p99_us,
// p999_us, errors. Exit status 1 if any answer was wrong or an error came.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

enum { OP_GET = 1, OP_SET = 2 };

static int redis = 0, conns = 50, depth = 1, value_size = 32, op = OP_SET, do_load = 0;
static long total = 100000, keyspace = 100000;
static double max_seconds = 120;
static const char* host = "127.0.0.1";
static int ports[16] = {7001}, nports = 1;  // -p 7001,7002: connections go round robin
static const char* db = "db";
static int route = 0;
static long* keys_by_port[16];  // --route: the keys whose primary is on each port
static long keys_on_port[16];

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

// Latencies: 1 µs buckets up to 200 ms, then one bucket.
#define BUCKETS 200000
static uint32_t hist[BUCKETS + 1];
static void record(double secs) {
  long us = (long)(secs * 1e6);
  if (us < 0) us = 0;
  hist[us < BUCKETS ? us : BUCKETS]++;
}
static long percentile(double p, long count) {
  long want = (long)(p * count), seen = 0;
  for (long i = 0; i <= BUCKETS; ++i) {
    seen += hist[i];
    if (seen > want) return i;
  }
  return BUCKETS;
}

static void key_of(long i, char* out) { snprintf(out, 17, "key:%012ld", i); }
static void value_of(long i, char* out) {
  char head[24];
  int n = snprintf(head, sizeof head, "%012ld", i);
  for (int j = 0; j < value_size; ++j) out[j] = j < n ? head[j] : 'x';
}

static uint64_t rng = 88172645463325252ull;
static uint64_t next_random(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
static long next_key(int port) {
  if (route && keys_on_port[port] > 0) return keys_by_port[port][next_random() % (uint64_t)keys_on_port[port]];
  return (long)(next_random() % (uint64_t)keyspace);
}

// ---- buffers -------------------------------------------------------------------------

typedef struct {
  char* data;
  size_t len, cap, off;  // off: bytes already consumed / written
} buf;

static void reserve(buf* b, size_t more) {
  if (b->len + more <= b->cap) return;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + more) cap *= 2;
  b->data = realloc(b->data, cap);
  b->cap = cap;
}
static void put(buf* b, const void* p, size_t n) {
  reserve(b, n);
  memcpy(b->data + b->len, p, n);
  b->len += n;
}
static void put8(buf* b, uint8_t x) { put(b, &x, 1); }
static void put_be(buf* b, uint64_t x, int bytes) {
  uint8_t tmp[8];
  for (int i = 0; i < bytes; ++i) tmp[i] = (uint8_t)(x >> (8 * (bytes - 1 - i)));
  put(b, tmp, bytes);
}
static void compact(buf* b) {
  if (b->off == 0) return;
  memmove(b->data, b->data + b->off, b->len - b->off);
  b->len -= b->off;
  b->off = 0;
}

// ---- msgpack, the few shapes the client protocol uses --------------------------------

static void mp_uint(buf* b, uint64_t x) {
  if (x < 128) put8(b, (uint8_t)x);
  else if (x < 65536) put8(b, 0xcd), put_be(b, x, 2);
  else if (x < 4294967296ull) put8(b, 0xce), put_be(b, x, 4);
  else put8(b, 0xcf), put_be(b, x, 8);
}
static void mp_bin(buf* b, const char* p, size_t n) {
  if (n < 256) put8(b, 0xc4), put8(b, (uint8_t)n);
  else if (n < 65536) put8(b, 0xc5), put_be(b, n, 2);
  else put8(b, 0xc6), put_be(b, n, 4);
  put(b, p, n);
}
static void mp_str(buf* b, const char* p, size_t n) {
  if (n < 32) put8(b, (uint8_t)(0xa0 | n));
  else put8(b, 0xd9), put8(b, (uint8_t)n);
  put(b, p, n);
}

typedef struct {
  const uint8_t* p;
  const uint8_t* end;
  int bad;
} reader;

static uint64_t be(const uint8_t* p, int n) {
  uint64_t x = 0;
  for (int i = 0; i < n; ++i) x = x << 8 | p[i];
  return x;
}
static int need(reader* r, size_t n) {
  if ((size_t)(r->end - r->p) < n) r->bad = 1;
  return !r->bad;
}
static uint64_t rd_uint(reader* r) {
  if (!need(r, 1)) return 0;
  uint8_t t = *r->p++;
  if (t < 0x80) return t;
  int n = t == 0xcc ? 1 : t == 0xcd ? 2 : t == 0xce ? 4 : t == 0xcf ? 8 : 0;
  if (n == 0 || !need(r, n)) return r->bad = 1, 0;
  uint64_t x = be(r->p, n);
  r->p += n;
  return x;
}
// A str, bin or nil: its bytes (len -1 for nil).
static const uint8_t* rd_bytes(reader* r, long* len) {
  if (!need(r, 1)) return NULL;
  uint8_t t = *r->p++;
  long n;
  if (t == 0xc0) return *len = -1, r->p;
  if ((t & 0xe0) == 0xa0) n = t & 0x1f;
  else if (t == 0xd9 || t == 0xc4) {
    if (!need(r, 1)) return NULL;
    n = *r->p++;
  } else if (t == 0xda || t == 0xc5) {
    if (!need(r, 2)) return NULL;
    n = (long)be(r->p, 2), r->p += 2;
  } else if (t == 0xdb || t == 0xc6) {
    if (!need(r, 4)) return NULL;
    n = (long)be(r->p, 4), r->p += 4;
  } else {
    r->bad = 1;
    return NULL;
  }
  if (!need(r, (size_t)n)) return NULL;
  const uint8_t* out = r->p;
  r->p += n;
  *len = n;
  return out;
}

// ---- connections -----------------------------------------------------------------------

typedef struct {
  long key;
  double sent;
} pending;

typedef struct {
  int fd;
  int port;   // index into ports
  int ready;  // panal: WELCOME received
  buf in, out;
  pending* q;  // in flight, oldest first (answers come in order per connection for Redis;
  int head, count;  // panal answers carry ids = slot index in q)
  uint64_t next_id;
} conn;

static long sent = 0, answered = 0, errors = 0, wrong = 0;
static long load_next = 0;

static int take_key(const conn* c, long* key) {
  if (do_load) {
    if (load_next >= keyspace) return 0;
    *key = load_next++;
    return 1;
  }
  if (sent >= total) return 0;
  *key = next_key(c->port);
  return 1;
}

static void add_request(conn* c, long key, int slot) {
  char k[17], v[1 << 16];
  key_of(key, k);
  const int o = do_load ? OP_SET : op;
  if (o == OP_SET) value_of(key, v);
  c->q[slot].key = key;
  c->q[slot].sent = now_s();
  c->count++;
  sent++;
  if (redis) {
    char head[64];
    if (o == OP_SET) {
      int n = snprintf(head, sizeof head, "*3\r\n$3\r\nSET\r\n$16\r\n");
      put(&c->out, head, n);
      put(&c->out, k, 16);
      n = snprintf(head, sizeof head, "\r\n$%d\r\n", value_size);
      put(&c->out, head, n);
      put(&c->out, v, value_size);
      put(&c->out, "\r\n", 2);
    } else {
      int n = snprintf(head, sizeof head, "*2\r\n$3\r\nGET\r\n$16\r\n");
      put(&c->out, head, n);
      put(&c->out, k, 16);
      put(&c->out, "\r\n", 2);
    }
    return;
  }
  // [66, id, op, key, value|nil, seq 0, floor 0, retry false]; the id is the queue slot.
  const size_t start = c->out.len;
  put_be(&c->out, 0, 4);
  put8(&c->out, 0x98);
  put8(&c->out, 66);
  mp_uint(&c->out, (uint64_t)slot);
  put8(&c->out, (uint8_t)o);
  mp_bin(&c->out, k, 16);
  if (o == OP_SET) mp_bin(&c->out, v, (size_t)value_size);
  else put8(&c->out, 0xc0);
  put8(&c->out, 0);
  put8(&c->out, 0);
  put8(&c->out, 0xc2);
  const uint32_t len = (uint32_t)(c->out.len - start - 4);
  uint8_t* h = (uint8_t*)c->out.data + start;
  h[0] = (uint8_t)(len >> 24), h[1] = (uint8_t)(len >> 16), h[2] = (uint8_t)(len >> 8), h[3] = (uint8_t)len;
}

// Redis answers in order: the queue is a ring.
static void fill(conn* c) {
  long key;
  while (c->count < depth && take_key(c, &key)) add_request(c, key, (c->head + c->count) % depth);
}

static void check_value(long key, const uint8_t* got, long len) {
  char want[1 << 16];
  value_of(key, want);
  if (len != value_size || memcmp(got, want, (size_t)value_size) != 0) wrong++;
}

static void done(conn* c, int slot, double t) {
  record(t - c->q[slot].sent);
  answered++;
}

// Consumes complete answers from c->in.
static void parse(conn* c) {
  for (;;) {
    const uint8_t* p = (const uint8_t*)c->in.data + c->in.off;
    const size_t have = c->in.len - c->in.off;
    const double t = now_s();
    if (redis) {
      if (have < 3) return;
      const uint8_t* eol = memmem(p, have, "\r\n", 2);
      if (!eol) return;
      size_t used = (size_t)(eol - p) + 2;
      if (c->count == 0) {
        errors++;
        c->in.off += used;
        continue;
      }
      const int slot = c->head;
      const int o = do_load ? OP_SET : op;
      if (p[0] == '$') {
        long n = strtol((const char*)p + 1, NULL, 10);
        if (n >= 0) {
          if (have < used + (size_t)n + 2) return;
          if (o == OP_GET) check_value(c->q[slot].key, p + used, n);
          used += (size_t)n + 2;
        } else if (o == OP_GET) {
          wrong++;  // the key was loaded: it must be there
        }
      } else if (p[0] != '+' || o != OP_SET) {
        errors++;
      }
      c->in.off += used;
      done(c, slot, t);
      c->head = (c->head + 1) % depth;
      c->count--;
      continue;
    }
    if (have < 4) return;
    const uint32_t len = (uint32_t)be(p, 4);
    if (have < 4 + (size_t)len) return;
    reader r = {p + 4, p + 4 + len, 0};
    if (r.p < r.end && (*r.p & 0xf0) == 0x90) {
      const int fields = *r.p++ & 0x0f;
      const uint64_t kind = rd_uint(&r);
      if (kind == 65 && !c->ready) {  // WELCOME
        const uint64_t code = rd_uint(&r);
        if (code != 0) {
          fprintf(stderr, "loadgen: refused with code %lu\n", (unsigned long)code);
          exit(1);
        }
        c->ready = 1;
      } else if (kind == 67 && fields == 6) {  // RESPONSE
        const uint64_t id = rd_uint(&r);
        const uint64_t code = rd_uint(&r);
        long mlen;
        (void)rd_bytes(&r, &mlen);
        const uint8_t found = r.p < r.end ? *r.p++ : 0;
        long vlen;
        const uint8_t* v = rd_bytes(&r, &vlen);
        const int slot = (int)id;
        const int o = do_load ? OP_SET : op;
        if (r.bad || slot >= depth) errors++;
        else {
          if (code != 0) errors++;
          else if (o == OP_GET && (found != 0xc3 || vlen < 0)) wrong++;
          else if (o == OP_GET) check_value(c->q[slot].key, v, vlen);
          done(c, slot, t);
          // Answers come in any order: keep the queue as a pool of slots.
          c->q[slot].key = -1;
          c->count--;
        }
      } else {
        errors++;
      }
    } else {
      errors++;
    }
    c->in.off += 4 + len;
  }
}

static void frame_hello(buf* b, uint64_t client_id);

// Reads one whole frame from a blocking socket into `b` (payload at b->data).
static void read_frame(int fd, buf* b) {
  b->len = 0;
  uint8_t head[4];
  for (size_t got = 0; got < 4;) {
    ssize_t n = read(fd, head + got, 4 - got);
    if (n <= 0) fprintf(stderr, "loadgen: the node closed the connection\n"), exit(1);
    got += (size_t)n;
  }
  const size_t len = (size_t)be(head, 4);
  if (len > (64u << 20)) fprintf(stderr, "loadgen: a frame of %zu bytes\n", len), exit(1);
  reserve(b, len);
  while (b->len < len) {
    ssize_t n = read(fd, b->data + b->len, len - b->len);
    if (n <= 0) fprintf(stderr, "loadgen: the node closed the connection\n"), exit(1);
    b->len += (size_t)n;
  }
}

static int dial(int i);

// --route: the slot map from the first node; each key's port.
static void learn_routes(void) {
  const int fd = dial(0);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  buf out = {0}, in = {0};
  frame_hello(&out, 1);
  put(&out, "\x00\x00\x00\x03\x92\x44\x01", 7);  // ROUTE_REQUEST [68, 1]
  if (write(fd, out.data, out.len) != (ssize_t)out.len) perror("loadgen: write"), exit(1);
  read_frame(fd, &in);  // WELCOME
  read_frame(fd, &in);  // ROUTE_MAP [69, id, code, generation, epoch, [nodes], primaries]
  reader r = {(const uint8_t*)in.data, (const uint8_t*)in.data + in.len, 0};
  const uint8_t head = r.p < r.end ? *r.p++ : 0;
  const uint64_t kind = rd_uint(&r), id = rd_uint(&r), code = rd_uint(&r);
  (void)rd_uint(&r), (void)rd_uint(&r);
  const uint8_t t = r.p < r.end ? *r.p++ : 0;
  if (head != 0x97 || kind != 69 || id != 1 || code != 0 || (t & 0xf0) != 0x90) {
    fprintf(stderr, "loadgen: no route map (kind %lu, code %lu)\n", (unsigned long)kind, (unsigned long)code);
    exit(1);
  }
  const int nodes = t & 0x0f;
  int port_of_node[16];
  for (int n = 0; n < nodes; ++n) {
    long len;
    const uint8_t* name = rd_bytes(&r, &len);
    port_of_node[n] = -1;
    if (!name || len <= 0) continue;
    char text[256] = {0};
    memcpy(text, name, (size_t)(len < 255 ? len : 255));
    const char* colon = strrchr(text, ':');
    const int port = colon ? atoi(colon + 1) : 0;
    for (int i = 0; i < nports; ++i) {
      if (ports[i] == port) port_of_node[n] = i;
    }
  }
  long plen;
  const uint8_t* primaries = rd_bytes(&r, &plen);
  if (r.bad || plen < 2) fprintf(stderr, "loadgen: a malformed route map\n"), exit(1);
  const long slots = plen / 2;
  for (int i = 0; i < nports; ++i) keys_by_port[i] = malloc(sizeof(long) * (size_t)keyspace);
  char k[17];
  for (long i = 0; i < keyspace; ++i) {
    key_of(i, k);
    const long s = (long)(XXH3_64bits(k, 16) % (uint64_t)slots);
    const int node = (int)be(primaries + 2 * s, 2);
    const int port = node < nodes ? port_of_node[node] : -1;
    if (port >= 0) keys_by_port[port][keys_on_port[port]++] = i;
  }
  close(fd);
  free(out.data);
  free(in.data);
}

static int dial(int i) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)ports[i % nports]);
  inet_pton(AF_INET, host, &a.sin_addr);
  if (connect(fd, (struct sockaddr*)&a, sizeof a) != 0) {
    perror("loadgen: connect");
    exit(1);
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

// panal answers in any order and carries the slot as id: a free slot is found by scanning.
static void panal_fill(conn* c) {
  long key;
  int from = 0;
  while (c->count < depth) {
    int slot = -1;
    for (int i = from; i < depth; ++i) {
      if (c->q[i].key == -1) {
        slot = i;
        break;
      }
    }
    if (slot < 0 || !take_key(c, &key)) break;
    add_request(c, key, slot);
    from = slot + 1;
  }
}

// CLIENT_HELLO [64, 3, db, nil, client id]
static void frame_hello(buf* b, uint64_t client_id) {
  const size_t start = b->len;
  put_be(b, 0, 4);
  put8(b, 0x95);
  put8(b, 64);
  put8(b, 3);
  mp_str(b, db, strlen(db));
  put8(b, 0xc0);
  mp_uint(b, client_id);
  const uint32_t len = (uint32_t)(b->len - start - 4);
  uint8_t* h = (uint8_t*)b->data + start;
  h[0] = (uint8_t)(len >> 24), h[1] = (uint8_t)(len >> 16), h[2] = (uint8_t)(len >> 8), h[3] = (uint8_t)len;
}

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : "";
    if (!strcmp(a, "--redis")) redis = 1;
    else if (!strcmp(a, "--load")) do_load = 1;
    else if (!strcmp(a, "--route")) route = 1;
    else if (!strcmp(a, "-h")) host = v, ++i;
    else if (!strcmp(a, "-p")) {
      nports = 0;
      for (const char* q = v; *q && nports < 16;) {
        ports[nports++] = atoi(q);
        const char* comma = strchr(q, ',');
        if (!comma) break;
        q = comma + 1;
      }
      ++i;
    }
    else if (!strcmp(a, "-c")) conns = atoi(v), ++i;
    else if (!strcmp(a, "-P")) depth = atoi(v), ++i;
    else if (!strcmp(a, "-n")) total = atol(v), ++i;
    else if (!strcmp(a, "-r")) keyspace = atol(v), ++i;
    else if (!strcmp(a, "-d")) value_size = atoi(v), ++i;
    else if (!strcmp(a, "--db")) db = v, ++i;
    else if (!strcmp(a, "--seconds")) max_seconds = atof(v), ++i;
    else if (!strcmp(a, "-t")) op = !strcmp(v, "get") ? OP_GET : OP_SET, ++i;
    else {
      fprintf(stderr, "usage: loadgen [--redis] [--db DB] -h HOST -p PORT -c N -P N -n N -r N -d N -t set|get [--load]\n");
      return 2;
    }
  }
  if (conns < 1 || depth < 1 || value_size < 1 || value_size > 60000 || keyspace < 1) return 2;
  if (route && !redis && !do_load) learn_routes();
  const int ep = epoll_create1(0);
  conn* cs = calloc((size_t)conns, sizeof(conn));
  for (int i = 0; i < conns; ++i) {
    conn* c = &cs[i];
    c->fd = dial(i);
    c->port = i % nports;
    c->q = calloc((size_t)depth, sizeof(pending));
    for (int j = 0; j < depth; ++j) c->q[j].key = -1;
    if (!redis) {
      frame_hello(&c->out, 0x10000ull + (uint64_t)i);
    } else {
      c->ready = 1;
    }
    struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
  }
  const double t0 = now_s();
  const long goal = do_load ? keyspace : total;
  struct epoll_event evs[256];
  while (answered < goal && now_s() - t0 < max_seconds) {
    for (int i = 0; i < conns; ++i) {  // top up every ready connection
      conn* c = &cs[i];
      if (!c->ready) continue;
      if (redis) fill(c);
      else panal_fill(c);
    }
    for (int i = 0; i < conns; ++i) {  // write what is pending
      conn* c = &cs[i];
      while (c->out.off < c->out.len) {
        ssize_t n = write(c->fd, c->out.data + c->out.off, c->out.len - c->out.off);
        if (n <= 0) break;
        c->out.off += (size_t)n;
      }
      compact(&c->out);
    }
    int n = epoll_wait(ep, evs, 256, 100);
    for (int i = 0; i < n; ++i) {
      conn* c = evs[i].data.ptr;
      for (;;) {
        reserve(&c->in, 65536);
        ssize_t got = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len);
        if (got > 0) {
          c->in.len += (size_t)got;
          continue;
        }
        if (got == 0) {
          fprintf(stderr, "loadgen: the server closed a connection\n");
          return 1;
        }
        break;
      }
      parse(c);
      compact(&c->in);
    }
  }
  const double secs = now_s() - t0;
  printf("ops=%ld seconds=%.3f ops_per_s=%.0f p50_us=%ld p99_us=%ld p999_us=%ld errors=%ld wrong=%ld\n", answered,
         secs, answered / secs, percentile(0.50, answered), percentile(0.99, answered), percentile(0.999, answered),
         errors, wrong);
  return errors || wrong || answered < goal ? 1 : 0;
}
