#pragma once
// A persistent pool of worker threads for data-parallel kernels (GEMM blocks, batched
// layers). The calling thread always takes part in its own work, and only workers idle at
// the moment of the call are recruited, so:
//  - several user threads calling kernels concurrently share the cores instead of queueing
//    more runnable threads than there are cores (a call that finds the pool busy runs with
//    fewer helpers, or inline);
//  - a kernel called from inside a pool task never waits for a busy worker and cannot deadlock;
//  - results never depend on which thread ran which piece, as long as every piece is a
//    deterministic function of its index (the parallel_for contract).

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "tokenmix/core/tensor.hpp"
#include "tokenmix/core/threads.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TOKENMIX_SPIN_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define TOKENMIX_SPIN_PAUSE() __asm__ __volatile__("yield")
#else
#define TOKENMIX_SPIN_PAUSE() ((void)0)
#endif

namespace tokenmix {

class ThreadPool {
 public:
  // The process-wide pool: hardware_threads() - 1 workers, started on first parallel use.
  static ThreadPool& global() {
    static ThreadPool pool(hardware_threads() - 1);
    return pool;
  }

  explicit ThreadPool(int workers) : capacity_(std::max(0, workers)) {}
  ~ThreadPool() {
    for (auto& w : workers_) {
      {
        std::lock_guard<std::mutex> lock(w->mutex);
        w->stop = true;
      }
      w->cv.notify_one();
    }
    for (auto& w : workers_) w->thread.join();
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int capacity() const { return capacity_; }

  // Runs task(i) for every i in [0, count) on the calling thread plus at most
  // max_threads - 1 workers that are idle now; returns when all indices are done.
  // Rethrows the first exception a task threw (the remaining indices still run).
  template <class Task>
  void parallel_for(Index count, int max_threads, Task&& task) {
    if (count <= 0) return;
    const int wanted = static_cast<int>(std::min<Index>(count, max_threads)) - 1;
    if (wanted <= 0 || capacity_ == 0) {
      for (Index i = 0; i < count; ++i) task(i);
      return;
    }
    Job job;
    job.count = count;
    job.context = &task;
    job.invoke = [](void* context, Index i) { (*static_cast<std::remove_reference_t<Task>*>(context))(i); };
    Worker* helpers[64];
    const int recruited = recruit(std::min(wanted, 64), helpers);
    job.pending.store(recruited, std::memory_order_relaxed);
    for (int h = 0; h < recruited; ++h) {
      {
        std::lock_guard<std::mutex> lock(helpers[h]->mutex);
        helpers[h]->job.store(&job, std::memory_order_release);
      }
      helpers[h]->cv.notify_one();
    }
    job.run();
    if (recruited > 0) {
      // Helpers usually finish within microseconds of us; spin briefly before sleeping.
      for (int spin = 0; spin < 4000 && job.pending.load(std::memory_order_acquire) != 0; ++spin)
        TOKENMIX_SPIN_PAUSE();
      std::unique_lock<std::mutex> lock(job.mutex);
      job.done.wait(lock, [&] { return job.pending.load(std::memory_order_acquire) == 0; });
    }
    if (job.error) std::rethrow_exception(job.error);
  }

 private:
  struct Job {
    std::atomic<Index> next{0};
    Index count = 0;
    void* context = nullptr;
    void (*invoke)(void*, Index) = nullptr;
    std::atomic<int> pending{0};
    std::mutex mutex;
    std::condition_variable done;
    std::exception_ptr error;

    void run() {
      for (Index i; (i = next.fetch_add(1, std::memory_order_relaxed)) < count;) {
        try {
          invoke(context, i);
        } catch (...) {
          std::lock_guard<std::mutex> lock(mutex);
          if (!error) error = std::current_exception();
        }
      }
    }
  };

  struct Worker {
    std::thread thread;
    std::mutex mutex;
    std::condition_variable cv;
    std::atomic<Job*> job{nullptr};
    bool stop = false;
  };

  // Takes up to `wanted` idle workers off the idle list, starting the pool if needed.
  int recruit(int wanted, Worker** out) {
    std::lock_guard<std::mutex> lock(idle_mutex_);
    if (workers_.empty()) start();
    int got = 0;
    while (got < wanted && !idle_.empty()) {
      out[got++] = idle_.back();
      idle_.pop_back();
    }
    return got;
  }

  void start() {  // idle_mutex_ held
    workers_.reserve(static_cast<std::size_t>(capacity_));
    for (int i = 0; i < capacity_; ++i) {
      workers_.push_back(std::make_unique<Worker>());
      Worker* w = workers_.back().get();
      idle_.push_back(w);
      w->thread = std::thread([this, w] { work(*w); });
    }
  }

  void work(Worker& w) {
    for (;;) {
      Job* job = nullptr;
      // A short spin catches back-to-back calls (layer after layer) without a futex wake.
      for (int spin = 0; spin < 2000 && job == nullptr; ++spin) {
        job = w.job.load(std::memory_order_acquire);
        if (job == nullptr) TOKENMIX_SPIN_PAUSE();
      }
      if (job == nullptr) {
        std::unique_lock<std::mutex> lock(w.mutex);
        w.cv.wait(lock, [&] { return w.job.load(std::memory_order_acquire) != nullptr || w.stop; });
        job = w.job.load(std::memory_order_acquire);
        if (job == nullptr) return;  // stopping
      }
      w.job.store(nullptr, std::memory_order_relaxed);
      job->run();
      {
        std::lock_guard<std::mutex> lock(idle_mutex_);
        idle_.push_back(&w);
      }
      // Last touch of *job: the caller may return (and destroy it) once pending hits zero,
      // which it can only observe after we release job->mutex.
      std::lock_guard<std::mutex> lock(job->mutex);
      if (job->pending.fetch_sub(1, std::memory_order_acq_rel) == 1) job->done.notify_one();
    }
  }

  const int capacity_;
  std::mutex idle_mutex_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<Worker*> idle_;
};

}  // namespace tokenmix
