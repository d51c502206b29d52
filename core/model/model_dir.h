// Where models live: the cache (LINCAT_CACHE, else $XDG_CACHE_HOME/lincat, else
// ~/.cache/lincat) holds models/<name>/ in Hugging Face layout. "default" = stories15M.
#pragma once

#include <string>
#include <vector>

namespace lincat {

std::string cache_dir();
std::string default_model_name();
// "" or "default" -> the default model's folder; a name in the cache -> its folder; else the path.
std::string resolve_model_dir(const std::string& spec);
std::vector<std::string> cached_models();  // folder paths holding a config.json

}  // namespace lincat
