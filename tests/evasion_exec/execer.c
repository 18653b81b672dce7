/* Runs /bin/true with LD_PRELOAD=LIB given in a way the caller's envp, read
 * at the syscall's entry, does not show; the new program gets it all the
 * same (tests/evasion_exec.rs):
 *   execer unmapped LIB  execve(2) with the variable's bytes in a page not
 *                        yet faulted in (a BPF read cannot fault it in;
 *                        the kernel's copy does)
 *   execer int80 LIB     execve through int $0x80, the ia32 entry (x86_64)
 * Exits 2 when it could not set up, 3 when the exec failed.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int unmapped(const char *lib)
{
	char var[4096];
	int n = snprintf(var, sizeof(var), "LD_PRELOAD=%s", lib);
	int fd = memfd_create("env", 0);
	char *p;

	if (n <= 0 || n >= (int)sizeof(var) || fd < 0 || write(fd, var, n + 1) != n + 1)
		return 2;
	/* Never touched here: the page has no page-table entry until the
	 * kernel's copy of the environment faults it in. */
	p = mmap(NULL, sizeof(var), PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return 2;
	char *argv[] = { "true", NULL };
	char *envp[] = { p, NULL };
	execve("/bin/true", argv, envp);
	perror("execve");
	return 3;
}

#if defined(__x86_64__)
/* int $0x80 takes 32-bit pointers: static storage of a non-PIE build lies
 * in the first 4 GiB. */
static char path32[] = "/bin/true";
static char arg32[] = "true";
static char var32[4096];
static uint32_t argv32[2];
static uint32_t envp32[2];

static int int80(const char *lib)
{
	int n = snprintf(var32, sizeof(var32), "LD_PRELOAD=%s", lib);
	long ret;

	if (n <= 0 || n >= (int)sizeof(var32))
		return 2;
	argv32[0] = (uint32_t)(uintptr_t)arg32;
	envp32[0] = (uint32_t)(uintptr_t)var32;
	asm volatile("int $0x80"
		     : "=a"(ret)
		     : "a"(11 /* ia32 execve */), "b"((uint32_t)(uintptr_t)path32),
		       "c"((uint32_t)(uintptr_t)argv32), "d"((uint32_t)(uintptr_t)envp32)
		     : "memory");
	fprintf(stderr, "int $0x80 execve: %ld\n", ret);
	return 3;
}
#endif

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	if (!strcmp(argv[1], "unmapped"))
		return unmapped(argv[2]);
#if defined(__x86_64__)
	if (!strcmp(argv[1], "int80"))
		return int80(argv[2]);
#endif
	return 2;
}
