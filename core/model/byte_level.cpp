#include "model/byte_level.h"

#include <array>
#include <cstdlib>
#include <unordered_map>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include "util/error.h"

namespace lincat {

static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}

namespace {
// GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves, the other 68
// bytes take the code points 256, 257, ... in byte order.
struct ByteMap {
    std::array<std::string, 256> to_char;
    std::unordered_map<uint32_t, uint8_t> from_cp;
    ByteMap() {
        uint32_t next = 256;
        for (uint32_t b = 0; b < 256; ++b) {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
            uint32_t cp = printable ? b : next++;
            append_utf8(to_char[b], cp);
            from_cp[cp] = uint8_t(b);
        }
    }
};
const ByteMap& byte_map() {
    static const ByteMap m;
    return m;
}
}  // namespace

std::string byte_level_map(std::string_view bytes) {
    const ByteMap& m = byte_map();
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char b : bytes) out += m.to_char[b];
    return out;
}

bool byte_level_unmap(std::string_view s, std::string& out) {
    const ByteMap& m = byte_map();
    for (size_t i = 0; i < s.size();) {
        uint8_t c = uint8_t(s[i]);
        uint32_t cp;
        size_t len;
        if (c < 0x80)
            cp = c, len = 1;
        else if ((c >> 5) == 0x6 && i + 1 < s.size())
            cp = ((c & 0x1F) << 6) | (uint8_t(s[i + 1]) & 0x3F), len = 2;
        else
            return false;  // every stand-in is below U+0800
        auto it = m.from_cp.find(cp);
        if (it == m.from_cp.end()) return false;
        out += char(it->second);
        i += len;
    }
    return true;
}

std::string nfc_normalize(std::string_view text) {
    if (text.empty()) return {};
    utf8proc_uint8_t* out = nullptr;
    utf8proc_ssize_t n =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()), utf8proc_ssize_t(text.size()), &out,
                     utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
    if (n < 0) return std::string(text);  // not valid UTF-8: nothing to normalize
    std::string s(reinterpret_cast<char*>(out), size_t(n));
    std::free(out);
    return s;
}

struct RegexSplit::Code {
    pcre2_code* code = nullptr;
    std::string label;
    ~Code() { pcre2_code_free(code); }
};

RegexSplit::RegexSplit(const std::string& pattern, const std::string& label) {
    auto c = std::make_shared<Code>();
    int err = 0;
    PCRE2_SIZE offset = 0;
    // UCP: \s, \w, \d and (?i) follow Unicode, as the Rust regex engines behind tokenizers do.
    // MATCH_INVALID_UTF: text that is not valid UTF-8 is split, not refused.
    c->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                            PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &offset, nullptr);
    if (!c->code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        fail(label, ": pre_tokenizer Split regex does not compile at offset ", offset, ": ",
             reinterpret_cast<const char*>(msg));
    }
    c->label = label;
    pcre2_jit_compile(c->code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter when JIT is absent
    code_ = c;
}

void RegexSplit::split(std::string_view text, std::vector<std::string_view>& pieces) const {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_->code, nullptr);
    auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t start = 0, emitted = 0;
    while (start <= text.size()) {
        int rc = pcre2_match(code_->code, subject, text.size(), start, 0, md, nullptr);
        if (rc == PCRE2_ERROR_NOMATCH) break;  // the rest is one piece
        if (rc < 0) {                          // a match or depth limit (a pathological pattern): refuse, never guess
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            pcre2_match_data_free(md);
            fail(code_->label, ": pre_tokenizer Split regex failed at byte ", start, ": ",
                 reinterpret_cast<const char*>(msg));
        }
        PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        size_t b = ov[0], e = ov[1];
        if (b > emitted) pieces.push_back(text.substr(emitted, b - emitted));
        if (e > b) pieces.push_back(text.substr(b, e - b));
        emitted = e;
        if (e == b) {  // empty match: step one character on
            if (e >= text.size()) break;
            start = e + 1;
            while (start < text.size() && (uint8_t(text[start]) & 0xC0) == 0x80) ++start;
        } else {
            start = e;
        }
    }
    if (emitted < text.size()) pieces.push_back(text.substr(emitted));
    pcre2_match_data_free(md);
}

}  // namespace lincat
