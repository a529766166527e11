"""A RoomyLayer's keys and values equal those of plain tensors put through the same steps, padding included."""

import torch

from painters.tasks.roomy_cache import RoomyLayer


def states(rows, tokens, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(rows, 2, tokens, 4, generator=generator), torch.randn(rows, 2, tokens, 4, generator=generator)


def pad_left(tensor, width):
    return torch.cat([tensor.new_zeros(*tensor.shape[:2], width - tensor.shape[2], tensor.shape[3]), tensor], dim=2)


class Plain:
    """The reference: every step as new tensors (concatenate, select, slice, pad)."""

    def __init__(self, keys, values):
        self.keys, self.values = keys, values

    def apply(self, change):
        self.keys, self.values = change(self.keys), change(self.values)

    def update(self, keys, values):
        self.keys, self.values = torch.cat([self.keys, keys], dim=2), torch.cat([self.values, values], dim=2)

    def join(self, keys, values):
        width = max(self.keys.shape[2], keys.shape[2])
        self.keys = torch.cat([pad_left(self.keys, width), pad_left(keys, width)])
        self.values = torch.cat([pad_left(self.values, width), pad_left(values, width)])


def test_rows_leave_and_join_in_place_and_steps_write_into_the_room():
    keys, values = states(4, 6, 0)
    roomy, plain = RoomyLayer(keys, values, room=3, rows=5), Plain(keys, values)
    buffer = roomy._buffers[0]

    def same():
        assert torch.equal(roomy.keys, plain.keys) and torch.equal(roomy.values, plain.values)

    roomy.update(*states(4, 1, 1))
    plain.update(*states(4, 1, 1))
    same()
    roomy.keep([0, 2, 3])  # row 1 leaves: rows 2 and 3 move up
    plain.apply(lambda t: t[[0, 2, 3]])
    same()
    roomy.drop_leading(2)
    plain.apply(lambda t: t[:, :, 2:])
    same()
    roomy.join(*states(2, 3, 2))  # shorter rows join, padded on the left
    plain.join(*states(2, 3, 2))
    same()
    roomy.join(*states(0, 7, 3))  # no rows, but wider than the view: the view widens over the dropped columns
    plain.join(*states(0, 7, 3))
    same()
    assert roomy._buffers[0] is buffer and roomy.has_room()  # all of it in place
    roomy.join(*states(1, 9, 4))  # wider than the buffer's tokens, one row past its rows: built anew
    plain.join(*states(1, 9, 4))
    same()
    assert roomy._buffers[0] is not buffer
    roomy.update(*states(6, 1, 5))
    plain.update(*states(6, 1, 5))
    same()
    assert roomy.get_seq_length() == 10 and roomy._buffers[0].shape == (6, 2, 11, 4)  # 2 columns of room kept
