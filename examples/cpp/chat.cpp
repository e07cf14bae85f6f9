// chat.cpp — a chat loop over libadak with the C++ wrapper adak.hpp.
//
//   c++ -std=c++17 chat.cpp -o chat $(pkg-config --cflags --libs adak)
//   ./chat MODEL.gguf [max_tokens_per_reply] < questions.txt
//
// Reads one user message per line from stdin and streams the model's replies. Models whose
// chat template uses ChatML markers (<|im_start|>, as SmolLM2 and Qwen do) get their turns
// wrapped in them; other models get the plain text.
#include "adak.hpp"

#include <cstdio>
#include <iostream>
#include <string>

int main(int argc, char **argv) {
    if (argc < 2) {
        std::cerr << "usage: " << argv[0] << " MODEL.gguf [max_tokens_per_reply] < messages\n";
        return 2;
    }
    int max_tokens = argc > 2 ? std::stoi(argv[2]) : 64;
    try {
        adak::check_version();
        adak::Model model(argv[1]);
        const bool chatml = model.get_string("chat_template").find("<|im_start|>") != std::string::npos;
        std::cout << "model " << model.arch() << " \"" << model.name() << "\", "
                  << (chatml ? "ChatML turns" : "plain text") << "\n";

        adak::Session session(model, 2048);
        adak_sampling_params sampling = session.sampling();
        sampling.temperature = 0.0f;
        session.set_sampling(sampling);
        bool first = true;
        std::string line;
        while (std::getline(std::cin, line)) {
            if (line.empty()) continue;
            std::string turn = chatml ? "<|im_start|>user\n" + line + "<|im_end|>\n<|im_start|>assistant\n" : line + "\n";
            auto tokens = model.tokenize(turn, first, /*parse_special=*/chatml);
            first = false;
            std::cout << "> " << line << "\n";
            size_t n = session.generate(tokens, max_tokens, [](adak_token, std::string_view piece) {
                std::cout.write(piece.data(), static_cast<std::streamsize>(piece.size()));
                std::cout.flush();
                return true;
            });
            std::cout << "\n[" << n << " tokens, position " << session.position() << "]\n";
            if (chatml) {
                // Close the assistant's turn so the next user turn follows the template.
                session.evaluate(model.tokenize("<|im_end|>\n", false, true));
            }
        }
    } catch (const adak::Error &e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
