//! The stereo mixer of a voice recording: decoded mono audio of the command center (left) and
//! the premises (right) arrives in bursts from two decoders; the mixer lays both out on one
//! clock, filling silence where a direction sent nothing. Plain logic, no I/O.
//!
//! **A direction's samples are placed in arrival order, paced by wall time with a small lag**, so
//! audio that arrives late by less than the lag keeps its place, a direction that stops (the
//! operator's microphone muted, a camera without audio) becomes silence, and a burst longer than
//! [`MAX_BACKLOG_SECS`] cannot grow memory without bound.

use std::collections::{HashMap, VecDeque};

/// Sample rate of the recording (speech: 16 kHz is wide-band Opus).
pub const RATE: u32 = 16_000;
/// Samples a direction may hold ahead of the clock before the oldest are dropped.
pub const MAX_BACKLOG_SECS: u32 = 2;

/// Which side of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The operator's voice (left channel).
    Center,
    /// The camera's own sound at the premises (right channel).
    Premises,
}

/// Two mono queues, drained into interleaved stereo; further voices (a room's participants) are
/// summed into the left channel.
#[derive(Debug, Default)]
pub struct Mixer {
    center: VecDeque<i16>,
    premises: VecDeque<i16>,
    /// More voices of the left channel, each its own queue, by source id.
    mixed: HashMap<u64, VecDeque<i16>>,
    /// Stereo frames produced so far.
    emitted: u64,
    /// Samples dropped because a direction ran too far ahead.
    pub dropped: u64,
}

impl Mixer {
    /// Queues decoded mono samples of `direction`.
    pub fn add(&mut self, direction: Direction, samples: &[i16]) {
        let queue = match direction {
            Direction::Center => &mut self.center,
            Direction::Premises => &mut self.premises,
        };
        queue.extend(samples);
        let limit = (RATE * MAX_BACKLOG_SECS) as usize;
        if queue.len() > limit {
            let excess = queue.len() - limit;
            queue.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    /// Queues decoded mono samples of voice `source`, summed into the left channel.
    pub fn add_mixed(&mut self, source: u64, samples: &[i16]) {
        let queue = self.mixed.entry(source).or_default();
        queue.extend(samples);
        let limit = (RATE * MAX_BACKLOG_SECS) as usize;
        if queue.len() > limit {
            let excess = queue.len() - limit;
            queue.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    /// Frames produced so far (the position of the next one).
    pub fn position(&self) -> u64 {
        self.emitted
    }

    /// Interleaved stereo (`[left, right, left, right, …]`) up to frame `until`; empty if the
    /// clock has not moved.
    pub fn take_until(&mut self, until: u64) -> Vec<i16> {
        let frames = until.saturating_sub(self.emitted) as usize;
        let mut out = Vec::with_capacity(frames * 2);
        for _ in 0..frames {
            let mut left = i32::from(self.center.pop_front().unwrap_or(0));
            for queue in self.mixed.values_mut() {
                left += i32::from(queue.pop_front().unwrap_or(0));
            }
            out.push(left.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16);
            out.push(self.premises.pop_front().unwrap_or(0));
        }
        self.mixed.retain(|_, q| !q.is_empty());
        self.emitted += frames as u64;
        out
    }

    /// Everything still queued, as stereo (the end of a recording).
    pub fn drain(&mut self) -> Vec<i16> {
        let rest = self
            .mixed
            .values()
            .map(VecDeque::len)
            .fold(self.center.len().max(self.premises.len()), usize::max) as u64;
        self.take_until(self.emitted + rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions_go_left_and_right_and_a_silent_side_is_zero() {
        let mut m = Mixer::default();
        m.add(Direction::Center, &[1, 2, 3]);
        m.add(Direction::Premises, &[7]);
        assert_eq!(m.take_until(2), vec![1, 7, 2, 0]);
        assert_eq!(m.position(), 2);
        assert_eq!(m.take_until(2), Vec::<i16>::new());
        assert_eq!(m.drain(), vec![3, 0]);
        assert_eq!(m.take_until(5), vec![0, 0, 0, 0]);
    }

    #[test]
    fn mixed_voices_are_summed_into_the_left_channel_without_wrapping() {
        let mut m = Mixer::default();
        m.add(Direction::Center, &[1, 1]);
        m.add_mixed(7, &[10, 20, 30]);
        m.add_mixed(8, &[100, i16::MAX]);
        assert_eq!(m.take_until(2), vec![111, 0, i16::MAX, 0]);
        assert_eq!(m.drain(), vec![30, 0]);
    }

    #[test]
    fn a_direction_far_ahead_of_the_clock_loses_its_oldest_samples() {
        let mut m = Mixer::default();
        let limit = (RATE * MAX_BACKLOG_SECS) as usize;
        m.add(Direction::Premises, &vec![5; limit]);
        m.add(Direction::Premises, &[9, 9]);
        assert_eq!(m.dropped, 2);
        let all = m.drain();
        assert_eq!(all.len(), limit * 2);
        assert_eq!(&all[all.len() - 2..], &[0, 9]);
    }
}
