// A duration as people read it in progress lines: "1h02m", "3m05s", "12s". Shared by the CLI's
// progress bars and the studio's job label.
#pragma once

#include <cstdio>
#include <string>

namespace lincat {

inline std::string duration_text(double s) {
    char buf[32];
    if (s >= 3600)
        std::snprintf(buf, sizeof buf, "%dh%02dm", int(s / 3600), int(s / 60) % 60);
    else if (s >= 60)
        std::snprintf(buf, sizeof buf, "%dm%02ds", int(s / 60), int(s) % 60);
    else
        std::snprintf(buf, sizeof buf, "%ds", int(s));
    return buf;
}

}  // namespace lincat
