/*
 * DoraSharp's MKL vendor fix (issue 15), loaded with LD_PRELOAD.
 *
 * libtorch 2.10 as TorchSharp ships it has oneMKL 2024.2 linked into libtorch_cpu.so. MKL picks its code
 * path (mkl_serv_cpu_detect) only after asking mkl_serv_intel_cpu_true() whether the CPU is Intel's; on any
 * other vendor (AMD, Hygon, ...) it takes its generic SSE path, about half the speed or worse on a CPU with
 * AVX2/AVX-512 FMA. libtorch_cpu.so calls this function through its PLT (an R_X86_64_JUMP_SLOT relocation),
 * so a definition earlier in the global symbol scope, i.e. a preloaded library, replaces MKL's own.
 * MKL then chooses its path from the CPU's instruction set alone, as it does on Intel.
 *
 * Harmless on Intel CPUs (MKL's own check answers 1 there too) and in processes without MKL (nothing calls
 * it). Built by native/mkl-vendor-fix/build.sh; see docs/performance.md.
 */
int mkl_serv_intel_cpu_true(void) { return 1; }
