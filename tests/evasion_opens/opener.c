/* Opens a file the ways bee-trace's open tracepoints do not see:
 *   opener uring PATH [N]    io_uring IORING_OP_OPENAT (after N-1 other rings)
 *   opener uring-async PATH  the same, forced onto an io-wq worker (IOSQE_ASYNC)
 *   opener uring-sqpoll PATH the same, submitted by the ring's SQ poll thread
 *   opener int80 PATH        open(2) through int $0x80 (the ia32 entry)
 *   opener int80-refused PATH the same, refused (EACCES)
 *   opener int80mem -        ptrace and process_vm_readv of a child through int $0x80
 *   opener handle PATH DIR   name_to_handle_at + open_by_handle_at (DIR: a mount fd)
 *   opener getfd PATH        a child opens PATH, the parent takes its fd (pidfd_getfd)
 *   opener steal PID FD      pidfd_getfd of another process's fd, refused (EPERM)
 *   opener take PID FD       pidfd_getfd of another process's fd, and a read
 *   opener fanotify DIR      fanotify_init + fanotify_mark of DIR
 * Prints one line: the pid that got the descriptor, the fd, the bytes read. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/fanotify.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int got(int fd)
{
	char buf[64];
	long n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
	printf("%d %d %ld\n", getpid(), fd, n);
	return fd >= 0 && n > 0 ? 0 : 1;
}

/* async 1: IOSQE_ASYNC (an io-wq worker opens); 2: IORING_SETUP_SQPOLL (the
 * ring's SQ poll thread submits) */
static int uring(const char *path, int rings, int async)
{
	struct io_uring_params p;
	/* the extra rings: io_uring_setup is reported once per process */
	while (--rings > 0) {
		memset(&p, 0, sizeof p);
		close(syscall(__NR_io_uring_setup, 4, &p));
	}
	memset(&p, 0, sizeof p);
	if (async == 2) {
		p.flags = IORING_SETUP_SQPOLL;
		p.sq_thread_idle = 100;
	}
	int ring = syscall(__NR_io_uring_setup, 4, &p);
	if (ring < 0)
		return perror("io_uring_setup"), 1;
	size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	char *sq = mmap(0, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED, ring, IORING_OFF_SQ_RING);
	char *cq = mmap(0, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED, ring, IORING_OFF_CQ_RING);
	struct io_uring_sqe *sqes = mmap(0, p.sq_entries * sizeof(struct io_uring_sqe),
					 PROT_READ | PROT_WRITE, MAP_SHARED, ring, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED)
		return perror("mmap"), 1;
	unsigned tail = *(unsigned *)(sq + p.sq_off.tail);
	unsigned idx = tail & *(unsigned *)(sq + p.sq_off.ring_mask);
	struct io_uring_sqe *e = &sqes[idx];
	memset(e, 0, sizeof *e);
	e->opcode = IORING_OP_OPENAT;
	e->fd = AT_FDCWD;
	e->addr = (unsigned long)path;
	e->open_flags = O_RDONLY;
	if (async == 1)
		e->flags = IOSQE_ASYNC; /* completed by an io-wq worker thread */
	((unsigned *)(sq + p.sq_off.array))[idx] = idx;
	__atomic_store_n((unsigned *)(sq + p.sq_off.tail), tail + 1, __ATOMIC_RELEASE);
	unsigned enter = IORING_ENTER_GETEVENTS | (async == 2 ? IORING_ENTER_SQ_WAKEUP : 0);
	if (syscall(__NR_io_uring_enter, ring, 1, 1, enter, NULL, 0) < 0)
		return perror("io_uring_enter"), 1;
	unsigned head = __atomic_load_n((unsigned *)(cq + p.cq_off.head), __ATOMIC_ACQUIRE);
	struct io_uring_cqe *cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	int res = cqes[head & *(unsigned *)(cq + p.cq_off.ring_mask)].res;
	return got(res);
}

static int int80(const char *path)
{
	static char buf[4096]; /* in the first 4 GiB: a non-PIE binary's .bss */
	long ret;
	snprintf(buf, sizeof buf, "%s", path);
	asm volatile("int $0x80" : "=a"(ret) : "a"(5), "b"(buf), "c"(O_RDONLY), "d"(0) : "memory");
	return got(ret);
}

/* A refused open through int $0x80: exit 0 when the kernel says EACCES. */
static int int80_refused(const char *path)
{
	static char buf[4096];
	long ret;
	snprintf(buf, sizeof buf, "%s", path);
	asm volatile("int $0x80" : "=a"(ret) : "a"(5), "b"(buf), "c"(O_RDONLY), "d"(0) : "memory");
	printf("%d %ld 0\n", getpid(), ret);
	return ret == -EACCES ? 0 : 1;
}

static long int80_3(long nr, long a, long b, long c)
{
	long ret;
	asm volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
	return ret;
}

/* A child's memory through the ia32 entry: ptrace(PTRACE_ATTACH) and
 * process_vm_readv (ia32 numbers 26 and 347). Prints the child's pid. */
static int int80mem(void)
{
	static char secret[64] = "child memory";
	static char copy[64];
	static struct { unsigned base, len; } local, remote;
	int up[2];
	char x;
	if (pipe(up))
		return 1;
	pid_t c = fork();
	if (c == 0) {
		close(up[1]);
		if (read(up[0], &x, 1) < 0)
			_exit(1);
		_exit(0);
	}
	long att = int80_3(26, 16 /* PTRACE_ATTACH */, c, 0);
	if (att == 0) {
		waitpid(c, NULL, 0);
		int80_3(26, 17 /* PTRACE_DETACH */, c, 0);
	}
	local.base = (unsigned)(unsigned long)copy;
	local.len = sizeof copy;
	remote.base = (unsigned)(unsigned long)secret;
	remote.len = sizeof secret;
	long n;
	asm volatile("push %%rbp\n\tmov $0, %%ebp\n\tint $0x80\n\tpop %%rbp"
		     : "=a"(n)
		     : "a"(347), "b"(c), "c"(&local), "d"(1), "S"(&remote), "D"(1)
		     : "memory");
	printf("%d %d %ld\n", getpid(), c, att == 0 && n == sizeof secret ? n : -1);
	close(up[1]);
	waitpid(c, NULL, 0);
	return att == 0 && n == sizeof secret ? 0 : 1;
}

static int handle(const char *path, const char *dir)
{
	struct file_handle *h = malloc(sizeof *h + MAX_HANDLE_SZ);
	int mnt_id;
	h->handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(AT_FDCWD, path, h, &mnt_id, 0) < 0)
		return perror("name_to_handle_at"), 1;
	int mfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (mfd < 0)
		return perror("open dir"), 1;
	return got(open_by_handle_at(mfd, h, O_RDONLY));
}

static int getfd(const char *path)
{
	int up[2], down[2];
	if (pipe(up) || pipe(down))
		return 1;
	pid_t c = fork();
	if (c == 0) {
		int fd = open(path, O_RDONLY);
		char x;
		if (write(up[1], &fd, sizeof fd) != sizeof fd)
			_exit(1);
		if (read(down[0], &x, 1) < 0)
			_exit(1);
		_exit(0);
	}
	int fd = -1;
	if (read(up[0], &fd, sizeof fd) != sizeof fd)
		return 1;
	int pidfd = syscall(__NR_pidfd_open, c, 0);
	int stolen = pidfd < 0 ? -1 : syscall(__NR_pidfd_getfd, pidfd, fd, 0);
	if (stolen < 0)
		perror("pidfd_getfd");
	int rc = got(stolen);
	if (write(down[1], "x", 1) != 1)
		rc = 1;
	waitpid(c, NULL, 0);
	return rc;
}

/* Tries to take fd of process pid; succeeds (exit 0) when the kernel says
 * EPERM, the attempt an unprivileged thief makes on a root process. */
static int steal(int pid, int fd)
{
	int pidfd = syscall(__NR_pidfd_open, pid, 0);
	if (pidfd < 0)
		return perror("pidfd_open"), 1;
	long r = syscall(__NR_pidfd_getfd, pidfd, fd, 0);
	int e = errno;
	printf("%d %ld %d\n", getpid(), r, e);
	return r < 0 && e == EPERM ? 0 : 1;
}

/* Takes fd of process pid and reads through it (the same user's process). */
static int take(int pid, int fd)
{
	int pidfd = syscall(__NR_pidfd_open, pid, 0);
	if (pidfd < 0)
		return perror("pidfd_open"), 1;
	return got(syscall(__NR_pidfd_getfd, pidfd, fd, 0));
}

static int fan(const char *dir)
{
	int fd = syscall(__NR_fanotify_init, FAN_CLASS_NOTIF, O_RDONLY);
	if (fd < 0)
		return perror("fanotify_init"), 1;
	if (syscall(__NR_fanotify_mark, fd, FAN_MARK_ADD, FAN_OPEN, AT_FDCWD, dir) < 0)
		return perror("fanotify_mark"), 1;
	printf("%d %d 0\n", getpid(), fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	setvbuf(stdout, NULL, _IONBF, 0);
	if (!strcmp(argv[1], "uring"))
		return uring(argv[2], argc > 3 ? atoi(argv[3]) : 1, 0);
	if (!strcmp(argv[1], "uring-async"))
		return uring(argv[2], 1, 1);
	if (!strcmp(argv[1], "uring-sqpoll"))
		return uring(argv[2], 1, 2);
	if (!strcmp(argv[1], "int80-refused"))
		return int80_refused(argv[2]);
	if (!strcmp(argv[1], "int80mem"))
		return int80mem();
	if (!strcmp(argv[1], "int80"))
		return int80(argv[2]);
	if (!strcmp(argv[1], "handle") && argc > 3)
		return handle(argv[2], argv[3]);
	if (!strcmp(argv[1], "getfd"))
		return getfd(argv[2]);
	if (!strcmp(argv[1], "steal") && argc > 3)
		return steal(atoi(argv[2]), atoi(argv[3]));
	if (!strcmp(argv[1], "take") && argc > 3)
		return take(atoi(argv[2]), atoi(argv[3]));
	if (!strcmp(argv[1], "fanotify"))
		return fan(argv[2]);
	return 2;
}
