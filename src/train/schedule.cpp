#include "train/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "base/error.hpp"

namespace dfp::train {

namespace {
void require(bool ok, const std::string& what) {
    if (!ok) throw Error(what);
}
}  // namespace

LrSchedule constant_lr(double lr) {
    require(lr >= 0.0, "constant_lr: needs lr >= 0, got " + std::to_string(lr));
    return LrSchedule([lr](std::int64_t) { return lr; });
}

LrSchedule step_lr(double lr, std::int64_t step, double gamma) {
    require(lr >= 0.0 && step >= 1 && gamma > 0.0,
            "step_lr: needs lr >= 0, step >= 1, gamma > 0, got " + std::to_string(lr) + ", " +
                std::to_string(step) + ", " + std::to_string(gamma));
    return LrSchedule([=](std::int64_t it) {
        return lr * std::pow(gamma, double(std::max<std::int64_t>(it, 0) / step));
    });
}

LrSchedule multi_step_lr(double lr, std::vector<std::int64_t> milestones, double gamma) {
    require(lr >= 0.0 && gamma > 0.0, "multi_step_lr: needs lr >= 0, gamma > 0, got " +
                                          std::to_string(lr) + ", " + std::to_string(gamma));
    require(std::adjacent_find(milestones.begin(), milestones.end(),
                               [](auto a, auto b) { return a >= b; }) == milestones.end(),
            "multi_step_lr: milestones must be strictly increasing");
    return LrSchedule([=, m = std::move(milestones)](std::int64_t it) {
        const auto passed = std::upper_bound(m.begin(), m.end(), it) - m.begin();
        return lr * std::pow(gamma, double(passed));
    });
}

LrSchedule cosine_lr(double lr, std::int64_t total, double final_lr) {
    require(lr >= 0.0 && total >= 1 && final_lr >= 0.0,
            "cosine_lr: needs lr >= 0, total >= 1, final_lr >= 0, got " + std::to_string(lr) +
                ", " + std::to_string(total) + ", " + std::to_string(final_lr));
    return LrSchedule([=](std::int64_t it) {
        const double t = double(std::clamp<std::int64_t>(it, 0, total)) / double(total);
        return final_lr + (lr - final_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * t));
    });
}

LrSchedule poly_lr(double lr, std::int64_t total, double power) {
    require(lr >= 0.0 && total >= 1 && power > 0.0,
            "poly_lr: needs lr >= 0, total >= 1, power > 0, got " + std::to_string(lr) + ", " +
                std::to_string(total) + ", " + std::to_string(power));
    return LrSchedule([=](std::int64_t it) {
        const double t = double(std::clamp<std::int64_t>(it, 0, total)) / double(total);
        return lr * std::pow(1.0 - t, power);
    });
}

LrSchedule linear_warmup(std::int64_t iterations, double start_factor, LrSchedule then) {
    require(iterations >= 1 && start_factor >= 0.0 && start_factor <= 1.0,
            "linear_warmup: needs iterations >= 1 and 0 <= start_factor <= 1, got " +
                std::to_string(iterations) + ", " + std::to_string(start_factor));
    return LrSchedule([=, then = std::move(then)](std::int64_t it) {
        if (it >= iterations) return then(it);
        const double ramp = start_factor + (1.0 - start_factor) * double(it) / double(iterations);
        return then(iterations) * ramp;
    });
}

}  // namespace dfp::train
