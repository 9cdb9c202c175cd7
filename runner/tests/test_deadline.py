"""The SIGALRM scoring timeout and the shield that keeps frames whole."""

import signal
import threading
import time
import unittest

from tests import support  # noqa: F401  (puts the runner on sys.path)
from _azmlinfsrv_runner.deadline import (
    ScoringTimeout,
    arm,
    can_interrupt_run,
    disarm,
    format_milliseconds,
    scoring_deadline,
    stop_timer,
    uninterruptible,
)


class ScoringDeadlineTest(unittest.TestCase):
    """Run in the main thread of a POSIX system, where the deadline is enforced."""

    def test_enforced_here(self):
        self.assertTrue(can_interrupt_run())

    def test_interrupts_sleep_on_time(self):
        started = time.monotonic()
        with self.assertRaises(ScoringTimeout) as raised:
            with scoring_deadline(100):
                time.sleep(3)
        self.assertLess(time.monotonic() - started, 1.0)
        self.assertEqual(str(raised.exception), "Script failed to finish execution within the allocated time: 100ms")

    def test_disarmed_after_the_body(self):
        with scoring_deadline(50):
            pass
        time.sleep(0.15)  # no late alarm

    def test_zero_means_no_deadline(self):
        with scoring_deadline(0):
            time.sleep(0.05)

    def test_shield_holds_the_timeout_until_the_write_is_done(self):
        steps = []
        with self.assertRaises(ScoringTimeout):
            with scoring_deadline(50):
                with uninterruptible():
                    time.sleep(0.2)
                    steps.append("write finished")
                steps.append("after the write")
        self.assertEqual(steps, ["write finished"])

    def test_a_timer_kept_after_disarm_raises_nothing_and_stops(self):
        arm(50)
        disarm(keep_timer=True)
        self.assertGreater(signal.getitimer(signal.ITIMER_REAL)[0], 0)
        time.sleep(0.1)  # its alarm comes and is ignored
        arm(50)
        disarm(keep_timer=True)
        stop_timer()
        self.assertEqual(signal.getitimer(signal.ITIMER_REAL), (0.0, 0.0))

    def test_the_scripts_own_alarm_handler_is_put_back(self):
        calls = []

        def scripts_handler(signum, frame):
            calls.append(signum)

        previous = signal.signal(signal.SIGALRM, scripts_handler)
        try:
            with self.assertRaises(ScoringTimeout):
                with scoring_deadline(20):
                    time.sleep(1)
            arm(20)
            disarm(keep_timer=True)  # put back at once, with the timer stopped
            self.assertIs(signal.getsignal(signal.SIGALRM), scripts_handler)
            self.assertEqual(signal.getitimer(signal.ITIMER_REAL), (0.0, 0.0))
            signal.setitimer(signal.ITIMER_REAL, 0.01)
            time.sleep(0.1)
            self.assertEqual(calls, [signal.SIGALRM])
        finally:
            signal.signal(signal.SIGALRM, previous)

    def test_no_deadline_outside_the_main_thread(self):
        outcome = []

        def worker():
            outcome.append(can_interrupt_run())
            with scoring_deadline(10):
                time.sleep(0.05)
            outcome.append("finished")

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        self.assertEqual(outcome, [False, "finished"])


class FormatTest(unittest.TestCase):
    def test_milliseconds_as_the_reference_prints_them(self):
        self.assertEqual(format_milliseconds(1000), "1000")
        self.assertEqual(format_milliseconds(1000.0), "1000")
        self.assertEqual(format_milliseconds(2.5), "2.5")


if __name__ == "__main__":
    unittest.main()
