// The floor of a request-per-read server on this machine: a RESP server
// that does nothing but answer "+OK" to every SET (bench/floor_bench.py).
// What it reaches is what the load generator and the kernel allow; no
// store can do better with one read and one write per request.
//
//   floor_server PORT epoll      level-triggered epoll, recv and send (as Redis does)
//   floor_server PORT uring      io_uring: recv and send queued, one io_uring_enter
//                                per round (built only where liburing is, -DWITH_URING)
//   floor_server --modes         prints the modes this build and kernel can run
//
// Every client's bytes are counted as SET commands by their "*3\r\n"
// headers (the load generator's keys and values never contain one).
#define _GNU_SOURCE
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef WITH_URING
#include <liburing.h>
#endif

#define MAX_FD 4096
#define BUF (64 * 1024)

struct conn {
  char in[BUF];
  char tail[4];  // a header cut between two reads
  int tail_len;
};
static struct conn* conns[MAX_FD];
static char replies[BUF];  // "+OK\r\n" over and over

// Commands whose header arrived in these `n` bytes.
static int count_commands(struct conn* c, int n) {
  char scan[BUF + 4];
  memcpy(scan, c->tail, c->tail_len);
  memcpy(scan + c->tail_len, c->in, n);
  int len = c->tail_len + n, k = 0;
  for (char* p = scan; (p = memmem(p, scan + len - p, "*3\r\n", 4)) != NULL; p += 4) ++k;
  c->tail_len = len < 3 ? len : 3;  // a header split over reads is found next time
  memcpy(c->tail, scan + len - c->tail_len, c->tail_len);
  return k;
}

static int listen_on(int port) {
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(s, (struct sockaddr*)&a, sizeof a) != 0 || listen(s, 512) != 0) {
    perror("listen");
    exit(1);
  }
  return s;
}

static int take(int fd) {
  int one = 1;
  if (fd < 0 || fd >= MAX_FD) {
    if (fd >= 0) close(fd);
    return -1;
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  conns[fd] = calloc(1, sizeof(struct conn));
  return fd;
}

static void drop(int fd) {
  close(fd);
  free(conns[fd]);
  conns[fd] = NULL;
}

static void serve_epoll(int ls) {
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls}, ready[128];
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  for (;;) {
    int n = epoll_wait(ep, ready, 128, -1);
    for (int i = 0; i < n; i++) {
      int fd = ready[i].data.fd;
      if (fd == ls) {
        int c = take(accept4(ls, NULL, NULL, SOCK_NONBLOCK));
        struct epoll_event e = {.events = EPOLLIN, .data.fd = c};
        if (c >= 0) epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
        continue;
      }
      int got = recv(fd, conns[fd]->in, BUF, 0);
      if (got <= 0) {
        drop(fd);
        continue;
      }
      int k = count_commands(conns[fd], got);
      if (k > 0 && send(fd, replies, (size_t)k * 5, MSG_NOSIGNAL) < 0) drop(fd);
    }
  }
}

#ifdef WITH_URING
// user_data: fd << 2 | what (0 accept, 1 recv, 2 send).
static void queue_recv(struct io_uring* r, int fd) {
  struct io_uring_sqe* q = io_uring_get_sqe(r);
  io_uring_prep_recv(q, fd, conns[fd]->in, BUF, 0);
  io_uring_sqe_set_data64(q, ((unsigned long)fd << 2) | 1);
}

static void serve_uring(int ls) {
  struct io_uring r;
  // Completions are run when this thread asks for them (one system call a
  // round), not by interrupting it: without these flags it ran at half the speed.
  struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN};
  if (io_uring_queue_init_params(1024, &r, &p) != 0) {
    fprintf(stderr, "io_uring unavailable\n");
    exit(2);
  }
  struct io_uring_sqe* q = io_uring_get_sqe(&r);
  io_uring_prep_multishot_accept(q, ls, NULL, NULL, 0);
  io_uring_sqe_set_data64(q, 0);
  for (;;) {
    io_uring_submit_and_wait(&r, 1);
    struct io_uring_cqe* cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&r, head, cqe) {
      ++seen;
      const unsigned long what = cqe->user_data & 3;
      const int fd = (int)(cqe->user_data >> 2), res = cqe->res;
      if (what == 0) {
        if (take(res) >= 0) queue_recv(&r, res);
      } else if (what == 1) {
        if (res <= 0) {
          drop(fd);
          continue;
        }
        int k = count_commands(conns[fd], res);
        if (k > 0) {  // the reply buffer is constant: nothing to keep alive
          struct io_uring_sqe* s = io_uring_get_sqe(&r);
          io_uring_prep_send(s, fd, replies, (size_t)k * 5, MSG_NOSIGNAL);
          io_uring_sqe_set_data64(s, ((unsigned long)fd << 2) | 2);
        }
        queue_recv(&r, fd);
      }
    }
    io_uring_cq_advance(&r, seen);
  }
}
#endif

int main(int argc, char** argv) {
  if (argc == 2 && strcmp(argv[1], "--modes") == 0) {  // what this build and kernel can run
    printf("epoll");
#ifdef WITH_URING
    struct io_uring r;
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN};
    if (io_uring_queue_init_params(8, &r, &p) == 0) {
      printf(" uring");
      io_uring_queue_exit(&r);
    }
#endif
    printf("\n");
    return 0;
  }
  if (argc != 3) {
    fprintf(stderr, "usage: floor_server PORT epoll|uring\n");
    return 1;
  }
  for (int i = 0; i + 5 <= BUF; i += 5) memcpy(replies + i, "+OK\r\n", 5);
  int ls = listen_on(atoi(argv[1]));
  printf("ready\n");
  fflush(stdout);
  if (strcmp(argv[2], "epoll") == 0) serve_epoll(ls);
#ifdef WITH_URING
  if (strcmp(argv[2], "uring") == 0) serve_uring(ls);
#endif
  fprintf(stderr, "mode %s not built\n", argv[2]);
  return 1;
}
