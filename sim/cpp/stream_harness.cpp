// Compiled stream testbench for Verilator: whole images per process, no per-cycle callback.
//
// The DUT has an input stream `inp` and an output stream `out` (Amaranth stream ports
// inp__valid/ready/payload, out__valid/ready/payload, clk, rst), payloads up to 64 bits.
// Usage: harness <beats.bin> <results.bin> <last_bit> [progress_every]
//
// beats.bin, little-endian uint64 words: n_images, then per image: n_beats, the beats' payloads.
// results.bin, uint64 words: n_images, then per image: cycles, n_outputs, the output payloads.
//
// Timing is that of tb/mlp_tb.py with a full-rate source and an always-ready sink: reset for two
// cycles, two idle cycles, then every image alone: its first beat is offered in the cycle after the
// previous image's last output (bit `last_bit` of the payload) was transferred, its beats follow
// back to back, and `cycles` counts from that first offer to the last output's transfer, both
// included.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "verilated.h"

#if !defined(HARNESS_TOP) || !defined(INP_VALID)
#error "include the Verilated model's header and define HARNESS_TOP and the port macros (sim/compiled.py writes this wrapper)"
#endif

static std::vector<uint64_t> read_words(const char *path) {
    std::vector<uint64_t> words;
    FILE *f = std::fopen(path, "rb");
    if (!f) {
        std::fprintf(stderr, "harness: cannot open %s\n", path);
        std::exit(2);
    }
    uint64_t w;
    while (std::fread(&w, sizeof w, 1, f) == 1) words.push_back(w);
    std::fclose(f);
    return words;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s beats.bin results.bin last_bit [progress_every]\n", argv[0]);
        return 2;
    }
    const std::vector<uint64_t> in = read_words(argv[1]);
    const unsigned last_bit = static_cast<unsigned>(std::atoi(argv[3]));
    const uint64_t progress = argc > 4 ? std::strtoull(argv[4], nullptr, 10) : 0;
    if (in.empty()) {
        std::fprintf(stderr, "harness: %s is empty\n", argv[1]);
        return 2;
    }
    auto context = std::make_unique<VerilatedContext>();
    auto dut = std::make_unique<HARNESS_TOP>(context.get());

    auto tick = [&]() {
        dut->clk = 1;
        dut->eval();
        dut->clk = 0;
        dut->eval();
    };
    dut->clk = 0;
    dut->INP_VALID = 0;
    dut->INP_PAYLOAD = 0;
    dut->OUT_READY = 0;
    dut->rst = 1;
    dut->eval();
    tick();
    tick();
    dut->rst = 0;
    dut->eval();
    tick();
    tick();

    const uint64_t images = in[0];
    std::vector<uint64_t> out{images};
    size_t pos = 1;
    const uint64_t timeout = 10'000'000;
    for (uint64_t img = 0; img < images; ++img) {
        if (pos >= in.size()) {
            std::fprintf(stderr, "harness: %s ends before image %llu\n", argv[1],
                         static_cast<unsigned long long>(img));
            return 2;
        }
        const uint64_t beats = in[pos++];
        const size_t first = pos;
        pos += beats;
        if (pos > in.size()) {
            std::fprintf(stderr, "harness: image %llu is truncated\n",
                         static_cast<unsigned long long>(img));
            return 2;
        }
        std::vector<uint64_t> results;
        uint64_t sent = 0, cycles = 0;
        bool done = false;
        dut->OUT_READY = 1;
        while (!done) {
            const bool offer = sent < beats;
            dut->INP_VALID = offer;
            dut->INP_PAYLOAD = offer ? in[first + sent] : 0;
            dut->eval();
            ++cycles;
            if (dut->OUT_VALID) {
                const uint64_t word = static_cast<uint64_t>(dut->OUT_PAYLOAD);
                results.push_back(word);
                done = (word >> last_bit) & 1;
            }
            if (offer && dut->INP_READY) ++sent;
            tick();
            if (cycles > timeout) {
                std::fprintf(stderr, "harness: image %llu: no last output after %llu cycles\n",
                             static_cast<unsigned long long>(img),
                             static_cast<unsigned long long>(cycles));
                return 1;
            }
        }
        out.push_back(cycles);
        out.push_back(results.size());
        out.insert(out.end(), results.begin(), results.end());
        if (progress && (img + 1) % progress == 0) {
            std::fprintf(stderr, "progress %llu\n", static_cast<unsigned long long>(img + 1));
            std::fflush(stderr);
        }
    }
    dut->final();
    FILE *f = std::fopen(argv[2], "wb");
    if (!f || std::fwrite(out.data(), sizeof(uint64_t), out.size(), f) != out.size()) {
        std::fprintf(stderr, "harness: cannot write %s\n", argv[2]);
        return 2;
    }
    std::fclose(f);
    return 0;
}
