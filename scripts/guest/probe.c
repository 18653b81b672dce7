/* Guest-side actions for `make qemu-kernels`: from one process, the memory
 * and network activity bee-trace must report, against a child it forks.
 * Prints the child's pid; every step is allowed to fail (the event records
 * the result), only a failed fork is an error. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static char secret[16] = "not-a-secret";

int main(void)
{
	pid_t child = fork();
	if (child < 0) {
		perror("fork");
		return 1;
	}
	if (child == 0) {
		pause();
		return 0;
	}
	printf("%d\n", child);
	fflush(stdout);
	usleep(100000);

	if (ptrace(PTRACE_ATTACH, child, 0, 0) == 0) {
		waitpid(child, NULL, 0);
		ptrace(PTRACE_DETACH, child, 0, 0);
	}

	char buf[16];
	struct iovec local = { buf, sizeof(buf) }, remote = { secret, sizeof(secret) };
	process_vm_readv(child, &local, 1, &remote, 1, 0);

	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(9) };
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	connect(fd, (struct sockaddr *)&sin, sizeof(sin));
	close(fd);

	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	return 0;
}
