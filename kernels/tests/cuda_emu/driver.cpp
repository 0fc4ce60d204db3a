// The launch emulator of tests/cuda_emu.rs, included after the generated kernels and the table
// `tk_emu_table` of their callers. Usage: `driver <jobs file> <outputs file>`.
//
// A job is one launch: a kernel, a grid (x, y) of 256-thread blocks, its buffers and its
// parameter words. Blocks run one after another; a block's threads run either as plain calls
// one after another (kernels without a barrier) or as fibers on their own stacks that switch
// to the next thread at `__syncthreads()`, so a barrier is real: no thread passes it until all
// 256 have reached the same one.
//
// Every buffer starts 256 bytes aligned (as cudaMalloc's do) and ends at most 255 bytes before
// an inaccessible page.
//
// Files are little-endian u64 words. Jobs: "TKEMU001", job count, then per job: kernel index,
// grid x, grid y, buffer count, word count, the words, then per buffer: byte count, 1 if it is
// an output, its bytes padded to 8. Outputs: per job, its output buffers in order, each padded
// to 8 bytes, then the number of make_<vector> calls it made.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vector>

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;
unsigned long long tk_emu_vectors_made;

namespace tk_emu {

const int BLOCK = 256;
const size_t STACK = 256 * 1024;

// The running job, for error messages.
const char* job_name = "";
long job_index = -1;

[[noreturn]] void fail(const char* what) {
    fprintf(stderr, "cuda_emu: job %ld (%s): %s\n", job_index, job_name, what);
    fflush(stderr);
    _exit(3);
}

void on_signal(int sig) {
    // Only async-signal-safe calls here.
    char buf[512];
    int n = snprintf(buf, sizeof buf, "cuda_emu: job %ld (%s): signal %d (%s)\n", job_index,
                     job_name, sig, sig == SIGABRT ? "aborted" : "bad memory access?");
    if (n > 0) {
        ssize_t w = write(2, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf);
        (void)w;
    }
    _exit(4);
}

// ---- fibers -------------------------------------------------------------------------------
enum State { READY, AT_BARRIER, DONE };

struct Fiber {
    void* sp;
    char* stack_top;
    State state;
    void* barrier_site;
};

Fiber fibers[BLOCK];
void* main_sp;
int current = -1;
bool in_fibers = false;
// The call the running block's threads make.
TkCall call_fn = nullptr;
void* const* call_bufs = nullptr;
const unsigned long long* call_words = nullptr;

}  // namespace tk_emu

#if defined(__x86_64__)
// Saves the callee-saved registers on the current stack, stores its pointer in *save and
// continues on stack `to` (one prepared by `fiber_init` or saved by an earlier switch).
extern "C" void tk_emu_switch(void** save, void* to);
asm(R"(
    .text
    .globl tk_emu_switch
    .type tk_emu_switch, @function
tk_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size tk_emu_switch, .-tk_emu_switch
)");
#else
#include <ucontext.h>
namespace tk_emu {
ucontext_t main_ctx, fiber_ctx[BLOCK];
}
#endif

namespace tk_emu {

extern "C" void tk_emu_fiber_main() {
    const int t = current;
    call_fn(call_bufs, call_words);
    fibers[t].state = DONE;
#if defined(__x86_64__)
    tk_emu_switch(&fibers[t].sp, main_sp);
#else
    swapcontext(&fiber_ctx[t], &main_ctx);
#endif
    fail("a finished fiber was resumed");
}

void fiber_init(int t) {
    Fiber& f = fibers[t];
    f.state = READY;
    f.barrier_site = nullptr;
#if defined(__x86_64__)
    // Six zero registers, the entry as the return address, then a fake return address of the
    // entry so that it starts with the stack alignment of a called function.
    unsigned long long* sp = (unsigned long long*)f.stack_top;
    *--sp = 0;
    *--sp = (unsigned long long)(void (*)())tk_emu_fiber_main;
    for (int i = 0; i < 6; ++i) *--sp = 0;
    f.sp = sp;
#else
    getcontext(&fiber_ctx[t]);
    fiber_ctx[t].uc_stack.ss_sp = f.stack_top - STACK;
    fiber_ctx[t].uc_stack.ss_size = STACK;
    fiber_ctx[t].uc_link = nullptr;
    makecontext(&fiber_ctx[t], (void (*)())tk_emu_fiber_main, 0);
#endif
}

void resume(int t) {
    current = t;
    threadIdx.x = (unsigned)t;
    threadIdx.y = 0;
    threadIdx.z = 0;
#if defined(__x86_64__)
    tk_emu_switch(&main_sp, fibers[t].sp);
#else
    swapcontext(&main_ctx, &fiber_ctx[t]);
#endif
    current = -1;
}

void alloc_stacks() {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t each = STACK + page;
    char* m = (char*)mmap(nullptr, each * BLOCK, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) fail("mmap of the fiber stacks");
    for (int t = 0; t < BLOCK; ++t) {
        // A guard page below each stack: an overflow faults instead of corrupting a neighbour.
        char* lo = m + t * each;
        if (mprotect(lo, page, PROT_NONE) != 0) fail("mprotect of a guard page");
        fibers[t].stack_top = lo + each;
    }
}

// Runs one block with real barriers.
void run_block_fibers() {
    for (int t = 0; t < BLOCK; ++t) fiber_init(t);
    in_fibers = true;
    for (;;) {
        for (int t = 0; t < BLOCK; ++t)
            if (fibers[t].state == READY) resume(t);
        int done = 0, waiting = 0;
        for (int t = 0; t < BLOCK; ++t) {
            if (fibers[t].state == DONE) ++done;
            if (fibers[t].state == AT_BARRIER) ++waiting;
        }
        if (done == BLOCK) break;
        if (done != 0) fail("__syncthreads() not reached by every thread of the block (some returned)");
        void* site = fibers[0].barrier_site;
        for (int t = 1; t < BLOCK; ++t)
            if (fibers[t].barrier_site != site)
                fail("threads of one block wait at different __syncthreads() calls");
        for (int t = 0; t < BLOCK; ++t) {
            fibers[t].state = READY;
            fibers[t].barrier_site = nullptr;
        }
    }
    in_fibers = false;
}

void run_block_plain() {
    for (int t = 0; t < BLOCK; ++t) {
        threadIdx.x = (unsigned)t;
        threadIdx.y = 0;
        threadIdx.z = 0;
        call_fn(call_bufs, call_words);
    }
}

// ---- buffers ------------------------------------------------------------------------------
struct Buf {
    char* map;
    size_t map_len;
    char* ptr;
    size_t bytes;
    bool out;
};

Buf alloc_buf(size_t bytes) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t rounded = (bytes + 255) / 256 * 256;
    const size_t body = (rounded + page - 1) / page * page;
    Buf b;
    b.map_len = body + page;
    b.map = (char*)mmap(nullptr, b.map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                        -1, 0);
    if (b.map == MAP_FAILED) fail("mmap of a buffer");
    if (mprotect(b.map + body, page, PROT_NONE) != 0) fail("mprotect of a guard page");
    b.ptr = b.map + body - rounded;
    b.bytes = bytes;
    b.out = false;
    return b;
}

struct Reader {
    FILE* f;
    unsigned long long word() {
        unsigned long long w;
        if (fread(&w, 8, 1, f) != 1) fail("jobs file ends early");
        return w;
    }
    void bytes(char* dst, size_t n) {
        if (n && fread(dst, 1, n, f) != n) fail("jobs file ends early");
        const size_t pad = (8 - n % 8) % 8;
        char skip[8];
        if (pad && fread(skip, 1, pad, f) != pad) fail("jobs file ends early");
    }
};

}  // namespace tk_emu

void __syncthreads() {
    using namespace tk_emu;
    if (!in_fibers) fail("__syncthreads() in a kernel launched without barriers");
    const int t = current;
    fibers[t].state = AT_BARRIER;
    fibers[t].barrier_site = __builtin_return_address(0);
    // Memory is shared between threads: nothing may be kept in registers across the switch.
    asm volatile("" ::: "memory");
#if defined(__x86_64__)
    tk_emu_switch(&fibers[t].sp, main_sp);
#else
    swapcontext(&fiber_ctx[t], &main_ctx);
#endif
    asm volatile("" ::: "memory");
}

int main(int argc, char** argv) {
    using namespace tk_emu;
    if (argc != 3) {
        fprintf(stderr, "usage: driver <jobs> <outputs>\n");
        return 2;
    }
    static char altstack[64 * 1024];
    stack_t ss;
    ss.ss_sp = altstack;
    ss.ss_size = sizeof altstack;
    ss.ss_flags = 0;
    sigaltstack(&ss, nullptr);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGSEGV, &sa, nullptr);
    sigaction(SIGBUS, &sa, nullptr);
    sigaction(SIGFPE, &sa, nullptr);
    sigaction(SIGILL, &sa, nullptr);
    // The alignment sanitizer aborts (UBSAN_OPTIONS=abort_on_error=1): name the job.
    sigaction(SIGABRT, &sa, nullptr);

    Reader in{fopen(argv[1], "rb")};
    if (!in.f) fail("cannot open the jobs file");
    FILE* out = fopen(argv[2], "wb");
    if (!out) fail("cannot create the outputs file");
    char magic[8];
    in.bytes(magic, 8);
    if (memcmp(magic, "TKEMU001", 8) != 0) fail("not a jobs file");
    alloc_stacks();
    blockDim.x = BLOCK;
    blockDim.y = 1;
    blockDim.z = 1;
    const unsigned long long jobs = in.word();
    for (unsigned long long j = 0; j < jobs; ++j) {
        job_index = (long)j;
        const unsigned long long k = in.word();
        if (k >= tk_emu_count) fail("kernel index out of range");
        job_name = tk_emu_table[k].name;
        const unsigned long long gx = in.word(), gy = in.word();
        const unsigned long long nbuf = in.word(), nwords = in.word();
        std::vector<unsigned long long> words(nwords);
        for (auto& w : words) w = in.word();
        std::vector<Buf> bufs;
        std::vector<void*> ptrs;
        for (unsigned long long b = 0; b < nbuf; ++b) {
            const size_t bytes = (size_t)in.word();
            const bool is_out = in.word() != 0;
            Buf buf = alloc_buf(bytes);
            buf.out = is_out;
            in.bytes(buf.ptr, bytes);
            bufs.push_back(buf);
            ptrs.push_back(buf.ptr);
        }
        if (nbuf != tk_emu_table[k].bufs || nwords != tk_emu_table[k].words)
            fail("buffer or word count differs from the kernel's signature");
        gridDim.x = (unsigned)gx;
        gridDim.y = (unsigned)gy;
        gridDim.z = 1;
        call_fn = tk_emu_table[k].call;
        call_bufs = ptrs.data();
        call_words = words.data();
        tk_emu_vectors_made = 0;
        for (unsigned long long by = 0; by < gy; ++by) {
            for (unsigned long long bx = 0; bx < gx; ++bx) {
                blockIdx.x = (unsigned)bx;
                blockIdx.y = (unsigned)by;
                blockIdx.z = 0;
                if (tk_emu_table[k].barriers)
                    run_block_fibers();
                else
                    run_block_plain();
            }
        }
        for (auto& b : bufs) {
            if (b.out) {
                if (fwrite(b.ptr, 1, b.bytes, out) != b.bytes) fail("write of an output");
                static const char zeros[8] = {0};
                const size_t pad = (8 - b.bytes % 8) % 8;
                if (pad && fwrite(zeros, 1, pad, out) != pad) fail("write of an output");
            }
            munmap(b.map, b.map_len);
        }
        if (fwrite(&tk_emu_vectors_made, 8, 1, out) != 1) fail("write of an output");
    }
    if (fclose(out) != 0) fail("close of the outputs file");
    return 0;
}
