/* The floor of this machine: PAIRS connections on loopback, each doing N
 * round trips of a MSG-byte message, one thread per connection on each side.
 * With SPIN=1 in the environment, reads busy-poll (MSG_DONTWAIT) instead of
 * sleeping in the kernel, as panal's idle schedulers do for a while.
 *
 *   tcp_pingpong server PORT MSG
 *   tcp_pingpong client PORT MSG N PAIRS    -> prints round trips per second
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int msg_size;
static long rounds;
static int port;
static int spin;

static int full(int fd, char* buf, int n, int writing) {
  int done = 0;
  while (done < n) {
    ssize_t k = writing ? write(fd, buf + done, (size_t)(n - done))
                        : recv(fd, buf + done, (size_t)(n - done), spin ? MSG_DONTWAIT : 0);
    if (k < 0 && spin && !writing) continue;  /* nothing yet: poll again */
    if (k <= 0) return -1;
    done += (int)k;
  }
  return 0;
}

static void* serve(void* arg) {
  int fd = (int)(long)arg;
  char buf[4096];
  while (full(fd, buf, msg_size, 0) == 0 && full(fd, buf, msg_size, 1) == 0) {
  }
  close(fd);
  return NULL;
}

static void* ping(void* arg) {
  (void)arg;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr*)&a, sizeof a) != 0) {
    perror("connect");
    exit(1);
  }
  char buf[4096] = {0};
  for (long i = 0; i < rounds; ++i) {
    if (full(fd, buf, msg_size, 1) || full(fd, buf, msg_size, 0)) exit(1);
  }
  close(fd);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: tcp_pingpong server PORT MSG | client PORT MSG N PAIRS\n");
    return 2;
  }
  port = atoi(argv[2]);
  spin = getenv("SPIN") != NULL && atoi(getenv("SPIN")) != 0;
  msg_size = atoi(argv[3]);
  if (msg_size < 1 || msg_size > 4096) return 2;
  if (strcmp(argv[1], "server") == 0) {
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr*)&a, sizeof a) || listen(ls, 64)) {
      perror("listen");
      return 1;
    }
    printf("ready\n");
    fflush(stdout);
    for (;;) {
      int fd = accept(ls, NULL, NULL);
      if (fd < 0) continue;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      pthread_t t;
      pthread_create(&t, NULL, serve, (void*)(long)fd);
      pthread_detach(t);
    }
  }
  if (argc < 6) return 2;
  rounds = atol(argv[4]);
  int pairs = atoi(argv[5]);
  pthread_t* ts = calloc((size_t)pairs, sizeof *ts);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (int i = 0; i < pairs; ++i) pthread_create(&ts[i], NULL, ping, NULL);
  for (int i = 0; i < pairs; ++i) pthread_join(ts[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("%ld\n", (long)((double)(rounds * pairs) / secs));
  return 0;
}
