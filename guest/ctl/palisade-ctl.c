/*
 * palisade-ctl: the guest's snapshot-restore helper on the control port (the virtio-serial port palisade.ctl; a unix
 * socket on the host, no login). A restored guest's clock stood still while it was saved and its kernel random state is
 * a copy of the template's; after every restore the host sends lines, root here answers:
 *
 *   "tsync K0"  sets the clock to K0 (host epoch seconds) at once, answers "ok L" (L: centiseconds that took), then
 *               mixes 64 bytes of /dev/hwrng (virtio-rng) into the kernel pool;
 *   "tset K1"   sets the clock to K1 at once (the host sends it L before its clock reads K1).
 *
 * Anything else is ignored. One process that never forks: after a restore TCG translates the guest's code afresh, and
 * the shell loop this replaces spent ~0.2 s of the guest's one vCPU spawning date(1) and head(1) while the waking
 * client's backend was being forked. With no host on the other end (the normal idle state) read(2) returns 0 at once;
 * it then waits for the port's SIGIO (sent when the host connects) or 100 ms, whichever comes first.
 *
 *   palisade-ctl /dev/vportNpM
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long centis_since(const struct timespec *start) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 100LL + (now.tv_nsec - start->tv_nsec) / 10000000LL;
}

/* K as epoch seconds: digits only, at most 12 of them; -1 otherwise. */
static long long parse_seconds(const char *text) {
    size_t n = strspn(text, "0123456789");
    if (n == 0 || n > 12 || (text[n] != '\0' && text[n] != ' ')) {
        return -1;
    }
    return strtoll(text, NULL, 10);
}

static int set_clock(long long seconds) {
    struct timespec ts = {.tv_sec = (time_t) seconds, .tv_nsec = 0};
    return clock_settime(CLOCK_REALTIME, &ts);
}

static void write_all(int fd, const char *bytes, size_t length) {
    while (length > 0) {
        ssize_t n = write(fd, bytes, length);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return; /* the host went away: it resyncs over SQL next time */
        }
        bytes += n;
        length -= (size_t) n;
    }
}

static void mix_entropy(void) {
    unsigned char bytes[64];
    int rng = open("/dev/hwrng", O_RDONLY | O_CLOEXEC);
    if (rng < 0) {
        return;
    }
    ssize_t n = read(rng, bytes, sizeof bytes);
    close(rng);
    if (n <= 0) {
        return;
    }
    int pool = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
    if (pool >= 0) {
        write_all(pool, (const char *) bytes, (size_t) n);
        close(pool);
    }
}

static void handle(int port, char *line) {
    if (strncmp(line, "tsync ", 6) == 0) {
        long long k0 = parse_seconds(line + 6);
        if (k0 < 0) {
            return;
        }
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        set_clock(k0);
        char answer[32];
        int length = snprintf(answer, sizeof answer, "ok %lld\n", centis_since(&start));
        write_all(port, answer, (size_t) length);
        mix_entropy();
    } else if (strncmp(line, "tset ", 5) == 0) {
        long long k1 = parse_seconds(line + 5);
        if (k1 >= 0) {
            set_clock(k1);
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: palisade-ctl /dev/vportNpM\n");
        return 2;
    }
    int port = open(argv[1], O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (port < 0) {
        perror(argv[1]);
        return 1;
    }
    /* SIGIO stays blocked: it is only ever taken by sigtimedwait, so none is lost between a read and the wait */
    sigset_t io;
    sigemptyset(&io);
    sigaddset(&io, SIGIO);
    sigprocmask(SIG_BLOCK, &io, NULL);
    if (fcntl(port, F_SETOWN, getpid()) == 0) {
        fcntl(port, F_SETFL, fcntl(port, F_GETFL) | O_ASYNC); /* without it: the 100 ms wait alone */
    }
    char buffer[256];
    size_t used = 0;
    for (;;) {
        ssize_t n = read(port, buffer + used, sizeof buffer - 1 - used);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) { /* no host on the other end (EOF) or an error: a partial line is void; wait */
            used = 0;
            struct timespec wait = {.tv_sec = 0, .tv_nsec = 100000000};
            sigtimedwait(&io, NULL, &wait);
            continue;
        }
        used += (size_t) n;
        buffer[used] = '\0';
        char *start = buffer;
        char *newline;
        while ((newline = strchr(start, '\n')) != NULL) {
            *newline = '\0';
            handle(port, start);
            start = newline + 1;
        }
        used = strlen(start);
        if (used == sizeof buffer - 1) { /* a line too long to be ours: drop it */
            used = 0;
        } else {
            memmove(buffer, start, used);
        }
    }
}
