import t from 'tap'
import { copyRow } from '../../src/storage/copy-text.js'

t.test('an array changed after it was encoded is encoded again', async (t) => {
  const a = ['alice', 'ci']
  t.equal(copyRow([a]), '{"alice","ci"}\n')
  t.equal(copyRow([a]), '{"alice","ci"}\n', 'the same array again')
  a[1] = 'q"x'
  t.equal(copyRow([a]), '{"alice","q\\\\"x"}\n')
  a.push('z')
  t.equal(copyRow([a]), '{"alice","q\\\\"x","z"}\n')
  t.equal(copyRow([[]]), '{}\n')
})
