#include "eval/position_error_format.h"

#include "util/error.h"
#include "util/json.h"

namespace lincat {

WindowMeans window_means(const std::vector<double>& by_position, const std::vector<int64_t>& linear_keys) {
    double inside = 0, beyond = 0;
    int64_t n_inside = 0, n_beyond = 0;
    for (size_t t = 0; t < by_position.size() && t < linear_keys.size(); ++t) {
        if (linear_keys[t] == 0) {
            inside += by_position[t];
            ++n_inside;
        } else {
            beyond += by_position[t];
            ++n_beyond;
        }
    }
    return {n_inside ? inside / double(n_inside) : 0, n_beyond ? beyond / double(n_beyond) : 0};
}

std::string position_error_to_json(const PositionError& e) {
    return json({{"layers", e.layers},
                 {"rows", e.rows},
                 {"positions", e.positions},
                 {"heads", e.heads},
                 {"window", e.window},
                 {"variant", e.variant},
                 {"mse", e.mse},
                 {"head_mse", e.head_mse},
                 {"layer_mse", e.layer_mse},
                 {"linear_keys", e.linear_keys},
                 {"window_edge", e.window_edge},
                 {"inside_mse", e.inside_mse},
                 {"beyond_mse", e.beyond_mse}})
        .dump();
}

PositionError position_error_from_json(const std::string& text, const std::string& label) {
    json j = json::parse(text, nullptr, false);
    if (!j.is_object()) fail(label, ": not a JSON object");
    PositionError e;
    try {
        e.layers = j.at("layers").get<std::vector<int64_t>>();
        e.rows = j.at("rows"), e.positions = j.at("positions"), e.heads = j.at("heads");
        e.window = j.at("window"), e.variant = j.at("variant");
        e.mse = j.at("mse").get<std::vector<std::vector<double>>>();
        e.head_mse = j.at("head_mse").get<std::vector<std::vector<double>>>();
        e.layer_mse = j.at("layer_mse").get<std::vector<double>>();
        e.linear_keys = j.at("linear_keys").get<std::vector<int64_t>>();
        e.window_edge = j.at("window_edge"), e.inside_mse = j.at("inside_mse"), e.beyond_mse = j.at("beyond_mse");
    } catch (const json::exception& x) {
        fail(label, ": not a position-error result (", x.what(), ")");
    }
    if (e.mse.size() != e.layers.size() || e.linear_keys.size() != size_t(e.positions))
        fail(label, ": 'mse' or 'linear_keys' does not fit 'layers' and 'positions'");
    for (auto& m : e.mse)
        if (m.size() != size_t(e.positions)) fail(label, ": a layer's 'mse' does not have 'positions' entries");
    return e;
}

}  // namespace lincat
