/*
 * The boot-trace demo guest: a freestanding x86-64 "kernel" small enough to single-step end to end.
 * It prints a banner and its command line on COM1, prints BOOT_TIME markers, runs work functions with
 * known instruction counts (head.S, work.h), runs symbol-less "user" code that makes two system calls
 * through functions named like Linux's syscall path, and resets the machine through the i8042.
 *
 * Determinism: every loop here runs a number of times fixed by constants or by the command line, and
 * numbers are printed with a fixed width, so two runs with the same command line execute exactly the
 * same instructions (the VMM's `--clock steps` traces are byte-identical).
 *
 * BOOT_TIME:<stage>:<ns> values are nanoseconds since the guest's first C code (tsc_init): TSC ticks
 * since then, scaled by the TSC frequency from CPUID leaf 0x16 (base MHz; the KVM engine's VMM fills it from
 * KVM_GET_TSC_KHZ where the host leaves it 0); where that leaf is missing or 0 (QEMU's default CPU models)
 * the ticks are printed as if the TSC ran at 1 GHz. (The VMM writes 0 to IA32_TSC at boot, but the
 * software-backed KVM here ignores it, so the guest keeps its own origin.)
 */
#include "work.h"

typedef unsigned long u64;
typedef unsigned int u32;
typedef unsigned char u8;

/* Linux's struct pt_regs, reduced to what entry_SYSCALL_64 pushes (head.S). */
struct pt_regs {
	u64 orig_ax, di, si, dx;
};

void work_small(void);
void work_medium(void);
void work_nested(void);

static inline void outb(unsigned short port, u8 v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline u8 inb(unsigned short port)
{
	u8 v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void cpuid(u32 leaf, u32 *a, u32 *b, u32 *c, u32 *d)
{
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}

static inline u64 rdtsc(void)
{
	u32 lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}

/* Polls LSR.THRE before each byte, as a real 8250 driver must. */
__attribute__((noinline)) void serial_putc(char c)
{
	while (!(inb(COM1_LSR) & LSR_THRE))
		;
	outb(COM1, (u8)c);
}

__attribute__((noinline)) void serial_write(const char *s, u64 n)
{
	for (u64 i = 0; i < n; i++)
		serial_putc(s[i]);
}

__attribute__((noinline)) void printk(const char *s)
{
	while (*s)
		serial_putc(*s++);
}

/* Exactly 20 digits, zero-padded: the instruction count does not depend on the value. */
__attribute__((noinline)) void print_u64_fixed(u64 v)
{
	char digits[20];
	for (int i = 19; i >= 0; i--) {
		digits[i] = (char)('0' + v % 10);
		v /= 10;
	}
	serial_write(digits, 20);
}

static u64 tsc_mhz;
static u64 tsc_origin;

/*
 * Branch-free on purpose: the CPUID a guest reads depends on the host (its max basic leaf, leaf 0x16) and on
 * the engine (KVM passes the host's through, QEMU TCG shows its own model), and the tests compare step
 * traces across engines and hosts line for line. So leaf 0x16 is always read (past the max leaf a CPU
 * returns some other leaf's data, discarded below) and the choice is made with cmov, never a jump: the
 * same instructions run whatever CPUID says.
 */
__attribute__((noinline)) void tsc_init(void)
{
	u32 max, a, b, c, d;
	u64 mhz = 1000, cand, zero = 0;
	tsc_origin = rdtsc();
	cpuid(0, &max, &b, &c, &d);
	cpuid(0x16, &a, &b, &c, &d);
	cand = a & 0xffff;
	__asm__("cmpl $0x16, %k[max]\n\t"
		"cmovb %[zero], %[cand]\n\t"   /* leaf 0x16 absent: no figure */
		"testq %[cand], %[cand]\n\t"
		"cmovnz %[cand], %[mhz]"         /* a figure of 0 means unknown: keep 1 GHz */
		: [mhz] "+r"(mhz), [cand] "+r"(cand)
		: [max] "r"((u64)max), [zero] "r"(zero)
		: "cc");
	tsc_mhz = mhz;
}

__attribute__((noinline)) void boot_time(const char *stage)
{
	u64 ns = (rdtsc() - tsc_origin) * 1000 / tsc_mhz;
	printk("BOOT_TIME:");
	printk(stage);
	printk(":");
	print_u64_fixed(ns);
	printk("\n");
}

__attribute__((noinline)) long __x64_sys_getpid(struct pt_regs *regs)
{
	(void)regs;
	return 1;
}

__attribute__((noinline)) long __x64_sys_write(struct pt_regs *regs)
{
	if (regs->di != 1)
		return -9; /* EBADF: only stdout */
	serial_write((const char *)regs->si, regs->dx);
	return (long)regs->dx;
}

__attribute__((noinline)) long do_syscall_64(struct pt_regs *regs)
{
	switch (regs->orig_ax) {
	case NR_GETPID:
		return __x64_sys_getpid(regs);
	case NR_WRITE:
		return __x64_sys_write(regs);
	default:
		return -38; /* ENOSYS */
	}
}

__attribute__((noinline)) void run_user(void)
{
	void (*user)(void) = (void (*)(void))USER_BASE;
	user();
}

/*
 * The command line the VMM put in boot_params (32-bit pointer plus its ext_ high half). Entered through
 * PVH without a start_info (head.S's pvh_start) there is no zero page: RSI = 0.
 */
__attribute__((noinline)) void print_cmdline(const u8 *zero_page)
{
	if (!zero_page) {
		printk("Command line: (none)\n");
		return;
	}
	u64 lo = *(const u32 *)(zero_page + BP_CMD_LINE_PTR);
	u64 hi = *(const u32 *)(zero_page + BP_EXT_CMD_LINE_PTR);
	const char *cmdline = (const char *)((hi << 32) | lo);
	printk("Command line: ");
	if (cmdline)
		printk(cmdline);
	printk("\n");
}

__attribute__((noreturn)) void machine_restart(void)
{
	printk("reboot: Restarting system\n");
	outb(I8042_COMMAND, I8042_RESET);
	for (;;)
		__asm__ volatile("hlt");
}

__attribute__((noreturn)) void start_kernel(const u8 *zero_page)
{
	tsc_init();
	boot_time("init_entry");
	printk("boot-trace demo guest\n");
	print_cmdline(zero_page);
	work_small();
	boot_time("mounts_done");
	work_medium();
	work_nested();
	boot_time("init_ok");
	run_user();
	boot_time("ready");
	machine_restart();
}
