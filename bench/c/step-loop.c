/*
 * The baseline for bench/capture.ts: the smallest C loop that single-steps the same guest from the same
 * state, so the TypeScript capture's steps/s can be compared with what KVM itself allows on this machine.
 * It writes no trace and resolves no symbols; it only counts DEBUG exits until the guest resets.
 *
 * Input: a folder written by the benchmark from the TypeScript VM builder (same recipe, same guest):
 *   mem.bin (guest RAM from physical 0), sregs.bin (struct kvm_sregs), regs.bin (struct kvm_regs),
 *   cpuid.bin (struct kvm_cpuid2 with its entries), msrs.bin (struct kvm_msrs with its entries).
 * Output (stdout): "steps <n> seconds <s> steps_per_second <r> exit <reason>".
 * Usage: step-loop DIR [max-steps]
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "step-loop: %s failed: %s\n", what, strerror(errno));
	exit(1);
}

static void *slurp(const char *dir, const char *name, size_t *len)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		die(path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		die("fstat");
	void *p = malloc(st.st_size);
	if (read(fd, p, st.st_size) != st.st_size)
		die("read");
	close(fd);
	*len = st.st_size;
	return p;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: step-loop DIR [max-steps]\n");
		return 2;
	}
	const char *dir = argv[1];
	unsigned long max_steps = argc > 2 ? strtoul(argv[2], 0, 10) : ~0UL;
	size_t mem_len, len;
	void *image = slurp(dir, "mem.bin", &mem_len);
	struct kvm_sregs *sregs = slurp(dir, "sregs.bin", &len);
	struct kvm_regs *regs = slurp(dir, "regs.bin", &len);
	struct kvm_cpuid2 *cpuid = slurp(dir, "cpuid.bin", &len);
	struct kvm_msrs *msrs = slurp(dir, "msrs.bin", &len);

	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("open /dev/kvm");
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		die("KVM_CREATE_VM");
	if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000) < 0)
		die("KVM_SET_TSS_ADDR");
	uint64_t idmap = 0xfffbc000;
	if (ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		die("KVM_SET_IDENTITY_MAP_ADDR");
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
		die("KVM_CREATE_IRQCHIP");
	struct kvm_pit_config pit = { 0 };
	if (ioctl(vm, KVM_CREATE_PIT2, &pit) < 0)
		die("KVM_CREATE_PIT2");
	void *mem = mmap(0, mem_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap");
	memcpy(mem, image, mem_len);
	struct kvm_userspace_memory_region region = { .slot = 0, .guest_phys_addr = 0, .memory_size = mem_len, .userspace_addr = (uint64_t)mem };
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		die("KVM_SET_USER_MEMORY_REGION");
	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		die("KVM_CREATE_VCPU");
	int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	struct kvm_run *run = mmap(0, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		die("mmap kvm_run");
	if (ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0)
		die("KVM_SET_CPUID2");
	if (ioctl(vcpu, KVM_SET_MSRS, msrs) < 0)
		die("KVM_SET_MSRS");
	if (ioctl(vcpu, KVM_SET_SREGS, sregs) < 0)
		die("KVM_SET_SREGS");
	if (ioctl(vcpu, KVM_SET_REGS, regs) < 0)
		die("KVM_SET_REGS");
	struct kvm_guest_debug dbg = { .control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP };
	if (ioctl(vcpu, KVM_SET_GUEST_DEBUG, &dbg) < 0)
		die("KVM_SET_GUEST_DEBUG");

	unsigned long steps = 1; /* the entry instruction, as the capture counts it */
	const char *reason = "max-steps";
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (steps < max_steps) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die("KVM_RUN");
		}
		if (run->exit_reason == KVM_EXIT_DEBUG) {
			steps++;
			continue;
		}
		if (run->exit_reason == KVM_EXIT_IO) {
			uint8_t *data = (uint8_t *)run + run->io.data_offset;
			if (run->io.direction == KVM_EXIT_IO_IN) {
				/* The serial LSR says "transmitter empty"; everything else floats high. */
				memset(data, run->io.port == 0x3fd ? 0x60 : 0xff, run->io.size * run->io.count);
			} else if (run->io.port == 0x64 && data[0] == 0xfe) {
				reason = "reset";
				break;
			}
			continue;
		}
		reason = "other-exit";
		break;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("steps %lu seconds %.6f steps_per_second %.0f exit %s\n", steps, s, steps / s, reason);
	return 0;
}
